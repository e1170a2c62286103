//! The store writer: a session's events and messages are written by a thread of their own, in batches, so
//! the loop never waits for the disk to emit an event.
//!
//! [`Emitter::emit`] numbers an event, queues it for the writer and delivers it at once. The writer takes
//! whatever is queued, writes it in one transaction, and repeats: no timer, so another process reading the
//! store (the desk, `errand show`, `errand attach`) sees an event milliseconds after it was emitted. A
//! [`StoreWriter::flush`] waits until everything queued before it is written; the session flushes before a
//! tool runs, before each model request, before it waits for a person, and at the end of a run. The journal
//! does not go through the writer: its rows are written before a change, synchronously.
//!
//! The first write that fails stops the writer: it writes nothing after it (the stored stream stays a prefix
//! of what was emitted), and every later emit and flush fails with that error, so the task ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use errand_store::{Append, Store, StoreError};
use tokio::sync::mpsc::UnboundedSender;

use crate::AgentError;
use crate::event::{Event, EventMsg};

/// The most rows one transaction writes: a long queue is written in several, so other processes waiting for
/// the store's write lock get it in between.
const MAX_BATCH: usize = 4096;

/// What the writer thread is asked to do, in the order asked.
enum Command {
    Write(Append),
    /// Answer once everything before it is written (or the writer has failed).
    Flush(FlushReply),
}

/// How a flush waits: an async task on a oneshot, a thread (the session's drop) on a blocking channel.
enum FlushReply {
    Async(tokio::sync::oneshot::Sender<()>),
    Blocking(mpsc::SyncSender<()>),
}

/// What the writer thread and the handles share.
#[derive(Default)]
struct Shared {
    /// The first write that failed; nothing is written after it.
    failure: OnceLock<Arc<StoreError>>,
    /// Rows queued and not yet written (or dropped, after a failure): a flush with none waits for nothing.
    pending: AtomicU64,
    /// Rows written, transactions committed, and the time spent in them, for `RUST_LOG=errand_agent=debug`.
    rows: AtomicU64,
    transactions: AtomicU64,
    store_micros: AtomicU64,
}

impl Shared {
    /// Counts a transaction of `rows` rows begun at `started`.
    fn count(&self, rows: usize, started: Instant) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.store_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    fn result(&self) -> Result<(), AgentError> {
        match self.failure.get() {
            Some(source) => Err(AgentError::Record { source: source.clone() }),
            None => Ok(()),
        }
    }
}

/// The handle on a writer thread. The thread ends, having written everything queued, when the handle is
/// dropped; a session and the sub-agents it starts share one.
pub(crate) struct StoreWriter {
    commands: Option<mpsc::Sender<Command>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// For writing directly should the thread be gone (it cannot end while the handle lives, short of a panic).
    store: Arc<Store>,
}

impl StoreWriter {
    /// Starts a writer thread for `store`.
    pub(crate) fn start(store: Arc<Store>) -> Arc<Self> {
        let (commands, queue) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread = {
            let (store, shared) = (store.clone(), shared.clone());
            std::thread::Builder::new()
                .name("errand-store-writer".into())
                .spawn(move || write_queue(&store, &queue, &shared))
                .map_err(|error| tracing::warn!(%error, "could not start the store writer; writing directly"))
                .ok()
        };
        let commands = thread.as_ref().map(|_| commands);
        Arc::new(Self { commands, shared, thread, store })
    }

    /// Queues a row, unless an earlier write failed; then that failure is the answer.
    pub(crate) fn write(&self, row: Append) -> Result<(), AgentError> {
        self.shared.result()?;
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        let row = match &self.commands {
            Some(commands) => match commands.send(Command::Write(row)) {
                Err(mpsc::SendError(Command::Write(row))) => row,
                _ => return Ok(()),
            },
            None => row,
        };
        // No thread to write it: write it here, as errand did before it had a writer.
        self.shared.pending.fetch_sub(1, Ordering::AcqRel);
        self.write_now(&row)
    }

    /// Writes a row in the calling thread, unless an earlier write failed. Only when nothing is queued, or
    /// the row would overtake the queue.
    fn write_now(&self, row: &Append) -> Result<(), AgentError> {
        self.shared.result()?;
        let started = Instant::now();
        self.store.append_batch(std::slice::from_ref(row)).map_err(|source| {
            let source = Arc::new(source);
            let _ = self.shared.failure.set(source.clone());
            AgentError::Record { source }
        })?;
        self.shared.count(1, started);
        Ok(())
    }

    /// Waits until every row queued before it is written; the first failed write, if any, is the error.
    pub(crate) async fn flush(&self) -> Result<(), AgentError> {
        if self.shared.pending.load(Ordering::Acquire) == 0 {
            return self.shared.result();
        }
        let (reply, written) = tokio::sync::oneshot::channel();
        if self
            .commands
            .as_ref()
            .is_some_and(|commands| commands.send(Command::Flush(FlushReply::Async(reply))).is_ok())
        {
            let _ = written.await;
        }
        self.shared.result()
    }

    /// [`StoreWriter::flush`] for code that cannot await (a session being dropped). Blocks the thread.
    pub(crate) fn flush_blocking(&self) -> Result<(), AgentError> {
        if self.shared.pending.load(Ordering::Acquire) == 0 {
            return self.shared.result();
        }
        let (reply, written) = mpsc::sync_channel(1);
        if self
            .commands
            .as_ref()
            .is_some_and(|commands| commands.send(Command::Flush(FlushReply::Blocking(reply))).is_ok())
        {
            let _ = written.recv();
        }
        self.shared.result()
    }

    /// Logs, at debug level, what the writer has written so far and the time it spent in the store.
    pub(crate) fn log_totals(&self, session: &str) {
        tracing::debug!(
            session,
            rows = self.shared.rows.load(Ordering::Relaxed),
            transactions = self.shared.transactions.load(Ordering::Relaxed),
            store_us = self.shared.store_micros.load(Ordering::Relaxed),
            "store writer totals"
        );
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what is in it.
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: takes what is queued (up to [`MAX_BATCH`] rows), writes it in one transaction, answers
/// the flushes queued with it, and repeats until the queue closes.
fn write_queue(store: &Store, queue: &mpsc::Receiver<Command>, shared: &Shared) {
    let mut rows = Vec::new();
    let mut flushes = Vec::new();
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Write(row) => rows.push(row),
                Command::Flush(reply) => flushes.push(reply),
            }
            if rows.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !rows.is_empty() && shared.failure.get().is_none() {
            let started = Instant::now();
            match store.append_batch(&rows) {
                Ok(()) => shared.count(rows.len(), started),
                Err(error) => {
                    // Reported by the next emit or flush, which ends the task with it.
                    tracing::debug!(%error, "could not store a session's events and messages");
                    let _ = shared.failure.set(Arc::new(error));
                }
            }
        }
        shared.pending.fetch_sub(rows.len() as u64, Ordering::AcqRel);
        rows.clear();
        for reply in flushes.drain(..) {
            match reply {
                FlushReply::Async(reply) => {
                    let _ = reply.send(());
                }
                FlushReply::Blocking(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    }
}

/// Numbers, queues for the store and delivers one session's events; clones (the egress proxy's, a question's
/// relay) share the numbering.
#[derive(Clone)]
pub(crate) struct Emitter {
    pub(crate) writer: Arc<StoreWriter>,
    pub(crate) session: String,
    /// The number of the session's last event. Held while an event is queued and delivered, so events reach
    /// the store and the subscriber in the order they are numbered.
    pub(crate) last_seq: Arc<Mutex<u64>>,
    pub(crate) sender: Option<UnboundedSender<Event>>,
}

impl Emitter {
    /// Numbers `msg`, queues it for the store and delivers it, without waiting for the disk. Fails, without
    /// delivering it, when an earlier write of the session's failed.
    pub(crate) fn emit(&self, msg: EventMsg) -> Result<(), AgentError> {
        self.number_and_deliver(msg, false)
    }

    /// [`Emitter::emit`], storing the event before delivering it, in this thread, when nothing is queued
    /// (else it is queued, and a flush stores it). For a run's last event: a front end may act on the run's
    /// end as soon as the store records it, and a trip through the writer's thread would come between.
    pub(crate) fn emit_stored(&self, msg: EventMsg) -> Result<(), AgentError> {
        self.number_and_deliver(msg, true)
    }

    fn number_and_deliver(&self, msg: EventMsg, store_now: bool) -> Result<(), AgentError> {
        let body = serde_json::to_string(&msg).map_err(AgentError::Serialize)?;
        let at = SystemTime::now();
        let mut last_seq = self.last_seq.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let seq = *last_seq + 1;
        let row = Append::Event { session_id: self.session.clone(), seq, kind: msg.kind().to_string(), body, at };
        // Under the numbering lock nothing of this session is queued meanwhile; with nothing queued at all,
        // a row written here overtakes nothing.
        if store_now && self.writer.shared.pending.load(Ordering::Acquire) == 0 {
            self.writer.write_now(&row)?;
        } else {
            self.writer.write(row)?;
        }
        *last_seq = seq;
        if let Some(sender) = &self.sender {
            // A front end that went away does not stop the task.
            let _ = sender.send(Event { seq, session: self.session.clone(), msg });
        }
        Ok(())
    }

    /// Waits until every event emitted before it (and every message appended) is written.
    pub(crate) async fn flush(&self) -> Result<(), AgentError> {
        self.writer.flush().await
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_emitted_from_several_threads_are_stored_numbered_as_delivered_and_readable_after_a_flush() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("errand.db");
        let store = Arc::new(Store::open(&path).unwrap());
        let session = store
            .create_session(&errand_store::NewSession {
                task: "t".into(),
                provider: "anthropic".into(),
                model: "m".into(),
                settings: serde_json::json!({}),
            })
            .unwrap()
            .id;
        let (sender, mut delivered) = tokio::sync::mpsc::unbounded_channel();
        let emitter = Emitter {
            writer: StoreWriter::start(store),
            session: session.clone(),
            last_seq: Arc::new(Mutex::new(0)),
            sender: Some(sender),
        };

        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let emitter = emitter.clone();
                std::thread::spawn(move || {
                    for index in 0..500 {
                        emitter.emit(EventMsg::TextDelta { text: format!("{thread}:{index}") }).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        emitter.flush().await.unwrap();

        // Another process's view: a second handle on the same file.
        let reader = Store::open(&path).unwrap();
        let stored = reader.events(&session, 0).unwrap();
        assert_eq!(stored.iter().map(|event| event.seq).collect::<Vec<_>>(), (1..=2000).collect::<Vec<u64>>());
        let mut received = Vec::new();
        while let Ok(event) = delivered.try_recv() {
            received.push((event.seq, serde_json::to_string(&event.msg).unwrap()));
        }
        let stored: Vec<_> = stored.into_iter().map(|event| (event.seq, event.body)).collect();
        assert_eq!(received, stored, "delivered in the order stored, with the same numbers");
        // Each thread's events keep its order.
        for thread in 0..4 {
            let indexes: Vec<usize> = stored
                .iter()
                .filter_map(|(_, body)| {
                    let text = serde_json::from_str::<serde_json::Value>(body).unwrap()["text"].as_str()?.to_string();
                    let (from, index) = text.split_once(':')?;
                    (from == thread.to_string()).then(|| index.parse().unwrap())
                })
                .collect();
            assert_eq!(indexes, (0..500).collect::<Vec<_>>());
        }
    }
}
