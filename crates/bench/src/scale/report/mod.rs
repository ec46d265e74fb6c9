//! `report`: the JSON objects `bench/scale` collected in one directory (one file per measurement,
//! named by what it measured) into `scale.json` and `scale.md`. Parts that did not run are left
//! out, so a partial run (`SCALE_PARTS=sse bench/scale`) still gets a report.
//!
//! `document` reads the files and assembles `scale.json`; `markdown` renders that document as
//! `scale.md`.

mod document;
mod markdown;

use anyhow::Result;
use std::path::Path;

pub fn run(dir: &Path, out_dir: &Path) -> Result<()> {
    let files = document::load(dir)?;
    let doc = document::build(&files);
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(out_dir.join("scale.json"), serde_json::to_string_pretty(&doc)? + "\n")?;
    std::fs::write(out_dir.join("scale.md"), markdown::markdown(&doc))?;
    eprintln!(
        "wrote {} and {}",
        out_dir.join("scale.json").display(),
        out_dir.join("scale.md").display()
    );
    Ok(())
}
