//! Fixed binary payloads (base64) for the image, audio and blob fixtures.
//!
//! The conformance suite only checks that the data and MIME type are present, so the smallest
//! valid files do: a 1×1 red PNG and an 8-sample silent 8 kHz mono WAV.

/// A 1×1 red pixel, PNG.
pub(crate) const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// One millisecond of silence, 8-bit mono WAV at 8 kHz.
pub(crate) const SILENT_WAV: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";
