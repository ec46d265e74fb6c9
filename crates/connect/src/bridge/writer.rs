//! The one task that owns stdout: messages arrive whole on a channel and leave as whole lines,
//! so concurrent answers never interleave, and nothing but JSON-RPC ever reaches the host.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Enough to let streams run ahead of a slow host, few enough that a host that stops reading
/// slows the server's streams down (TCP back-pressure) instead of filling memory.
const QUEUE: usize = 256;

enum Msg {
    Line(Vec<u8>),
    Close,
}

/// A handle for writing messages to stdout.
#[derive(Clone)]
pub(crate) struct Out(mpsc::Sender<Msg>);

impl Out {
    /// Queues one message (a single line of JSON, without its newline).
    pub(crate) async fn line(&self, line: Vec<u8>) {
        if self.0.send(Msg::Line(line)).await.is_err() {
            tracing::debug!("stdout is closed; a message from the server was dropped");
        }
    }

    /// Ends the writer after everything queued before.
    pub(crate) async fn close(&self) {
        let _ = self.0.send(Msg::Close).await;
    }
}

/// Starts the writer. The watch turns true when stdout failed (the host went away).
pub(crate) fn spawn<W>(output: W) -> (Out, JoinHandle<std::io::Result<()>>, watch::Receiver<bool>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    let (failed_tx, failed_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let result = write(output, rx).await;
        if result.is_err() {
            failed_tx.send_replace(true);
        }
        result
    });
    (Out(tx), task, failed_rx)
}

async fn write<W: AsyncWrite + Unpin>(mut output: W, mut rx: mpsc::Receiver<Msg>) -> std::io::Result<()> {
    while let Some(msg) = rx.recv().await {
        let Msg::Line(mut line) = msg else {
            break;
        };
        line.push(b'\n');
        output.write_all(&line).await?;
        // Flush when nothing else is waiting: one flush per burst, none held back.
        if rx.is_empty() {
            output.flush().await?;
        }
    }
    output.flush().await?;
    output.shutdown().await
}
