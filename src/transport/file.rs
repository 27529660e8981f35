//! The `file` transports, the shipped default: email as `.eml` files in the outbox (exactly the
//! bytes SMTP would carry, named `CAMPAIGN+TIME-N-CONTACT.eml`, each there whole or not at all:
//! see `write_whole`), SMS as JSON lines appended to one file (one `write` per line, cut back
//! off when it fails part-way: see `append_whole`). Both say `Sent` once the message is written;
//! it is on disk once the run syncs their file system, before the ledger records it
//! ([`Transport::unsynced`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use futures::future::BoxFuture;

use super::{Delivery, EmailOut, FileSystem, SmsOut, Transport};

/// The environment variable that injects faults into the file transports, for rehearsing
/// failures without a server: `P0003=permanent,P0004=transient*2,P0005=unknown,P0006=fatal,
/// P0007=optout` (by contact id; `*N`: only the first N tries fail).
pub const FAULTS_ENV: &str = "OUTREACH_FILE_FAULTS";

#[derive(Debug, Default)]
struct Faults(HashMap<String, (String, AtomicU32)>);

impl Faults {
    fn from_env() -> Self {
        let Ok(spec) = std::env::var(FAULTS_ENV) else {
            return Faults::default();
        };
        let mut map = HashMap::new();
        for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
            let Some((contact, kind)) = item.trim().split_once('=') else {
                continue;
            };
            let (kind, times) = match kind.split_once('*') {
                Some((k, n)) => (k, n.parse().unwrap_or(u32::MAX)),
                None => (kind, u32::MAX),
            };
            map.insert(
                contact.to_string(),
                (kind.to_string(), AtomicU32::new(times)),
            );
        }
        Faults(map)
    }

    /// The injected outcome for this contact's next try, if any.
    fn take(&self, contact: &str) -> Option<Delivery> {
        let (kind, left) = self.0.get(contact)?;
        left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()?;
        let error = format!("injected {kind} fault ({FAULTS_ENV})");
        Some(match kind.as_str() {
            "permanent" => Delivery::Permanent { error },
            "transient" => Delivery::Transient {
                error,
                retry_after: None,
            },
            "unknown" => Delivery::Unknown { error },
            "fatal" => Delivery::Fatal { error },
            "optout" => Delivery::OptedOut { error },
            _ => return None,
        })
    }
}

/// Email as `.eml` files: exactly the bytes SMTP would carry as `DATA`, preceded, when asked,
/// by the `Return-Path:` line a receiving mailbox adds from the envelope sender (which is not
/// part of those bytes, and is not the `From` address once `email.bounce_address` is set).
pub struct EmailFile {
    faults: Faults,
    /// Whether each file starts with `Return-Path: <envelope sender>`.
    return_path: bool,
    dir: PathBuf,
    file_system: FileSystem,
    sequence: AtomicU64,
    stamp: String,
    /// The thread that creates the files, one at a time: concurrent creates in one directory
    /// make the kernel spin on the directory's lock, and a creation that waits for another
    /// would hold up an async worker that could be rendering the next messages meanwhile.
    writer: Mutex<std::sync::mpsc::Sender<WriteJob>>,
}

/// One `.eml` for the writer thread to create.
struct WriteJob {
    bytes: Vec<u8>,
    tmp: PathBuf,
    path: PathBuf,
    done: tokio::sync::oneshot::Sender<std::io::Result<()>>,
}

impl EmailFile {
    /// Creates the outbox directory (0700) if needed, and starts the thread that writes files.
    /// `return_path`: each file starts with the envelope sender's `Return-Path:` line.
    pub fn new(dir: &Path, return_path: bool) -> std::io::Result<Self> {
        crate::private::create_dir(dir)?;
        let file_system = FileSystem::of(std::fs::File::open(dir)?, dir)?;
        let (tx, rx) = std::sync::mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || {
                // Ends when the transport is dropped (its sender with it).
                for job in rx {
                    let _ = job.done.send(write_whole(&job.tmp, &job.path, &job.bytes));
                }
            })?;
        Ok(EmailFile {
            faults: Faults::from_env(),
            return_path,
            dir: dir.to_path_buf(),
            file_system,
            sequence: AtomicU64::new(0),
            // Unique per process, so two runs never pick the same name.
            stamp: format!(
                "{}-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                std::process::id()
            ),
            writer: Mutex::new(tx),
        })
    }

    async fn write(&self, m: &EmailOut) -> std::io::Result<String> {
        let (campaign, contact_id) = (&m.campaign, &m.contact_id);
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        // `CAMPAIGN+`: `outreach purge --outbox` finds a campaign's files by it (an id is checked
        // to be letters, digits, `-`, `_` and `.`, so it is a safe name and `+` ends it).
        let name = format!(
            "{}+{}-{n:06}-{}.eml",
            campaign,
            self.stamp,
            crate::private::file_name_part(contact_id)
        );
        let (done, result) = tokio::sync::oneshot::channel();
        let mut bytes = Vec::with_capacity(m.bytes.len() + 80);
        if self.return_path {
            // As a delivery agent writes it (RFC 5322 3.6.7): first, the envelope sender.
            bytes.extend_from_slice(format!("Return-Path: <{}>\r\n", m.from).as_bytes());
        }
        bytes.extend_from_slice(&m.bytes);
        let job = WriteJob {
            bytes,
            tmp: self.dir.join(format!(".{name}.tmp")),
            path: self.dir.join(&name),
            done,
        };
        let gone = || std::io::Error::other("the outbox writer thread stopped");
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())??;
        Ok(name)
    }
}

/// Writes a file so that it is there whole or not at all. On Linux, as an unnamed file in the
/// outbox (`O_TMPFILE`) linked under its name once written: one directory entry instead of a
/// temporary one and a rename, and nothing left behind by a crash. Elsewhere, or where the
/// filesystem cannot, under a temporary name that is then renamed.
fn write_whole(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if write_unnamed(path, bytes)? {
        return Ok(());
    }
    write_renamed(tmp, path, bytes)
}

/// `Ok(false)`: no unnamed file could be made or linked here (a filesystem without them, no
/// `/proc`); the caller writes the portable way. Like a new file, it never replaces one that
/// exists.
#[cfg(target_os = "linux")]
fn write_unnamed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let unnamed = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    // Whatever the reason (a filesystem without unnamed files, an old kernel), the portable way
    // is tried: it reports any error that is not about unnamed files.
    let Ok(fd) = unnamed else {
        return Ok(false);
    };
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes)?;
    let proc_path = {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", f.as_raw_fd())
    };
    match rustix::fs::linkat(CWD, &proc_path, CWD, path, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Err(Errno::EXIST.into()),
        // No `/proc` (a bare container), or linking refused: the portable way.
        Err(_) => Ok(false),
    }
}

/// The portable way: written whole under `tmp`, then renamed to `path`. A write or rename that
/// fails (a full disk) removes `tmp`: what is left in the outbox is only whole messages.
fn write_renamed(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = crate::private::open(tmp, crate::private::Open::CreateNew)?;
    let written = f.write_all(bytes).and_then(|()| {
        drop(f);
        std::fs::rename(tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Messages in flight for the file transports: they have no sessions to bound, and a deep
/// pipeline lets one ledger commit (one fsync) claim many messages.
const FILE_IN_FLIGHT: usize = 128;

impl Transport<EmailOut> for EmailFile {
    fn name(&self) -> &str {
        "file"
    }

    fn in_flight(&self, concurrency: usize) -> usize {
        concurrency.max(FILE_IN_FLIGHT)
    }

    fn sessions(&self, concurrency: usize) -> usize {
        self.in_flight(concurrency)
    }

    fn unsynced(&self) -> Option<FileSystem> {
        Some(self.file_system.clone())
    }

    fn send<'a>(&'a self, m: &'a EmailOut) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            if let Some(fault) = self.faults.take(&m.contact_id) {
                return fault;
            }
            match self.write(m).await {
                Ok(name) => Delivery::Sent { provider_id: name },
                // Linked (or renamed) only once whole: a failed write left no message behind.
                Err(e) => Delivery::Transient {
                    error: format!("writing to {}: {e}", self.dir.display()),
                    retry_after: None,
                },
            }
        })
    }
}

/// SMS as JSON lines. An SMS's id is `CAMPAIGN/FILE@OFFSET` (`psoas-2026/sms.jsonl@1234`): the
/// offset of its line names it within its file, which campaigns may share, and the campaign
/// keeps two campaigns' files in one ledger apart (by the offset alone, the second campaign's
/// ids met the first's, and its SMS's parts, the rows its receipts are matched to, were
/// dropped).
pub struct SmsFile {
    faults: Faults,
    path: PathBuf,
    /// The file's name, in each SMS's id.
    name: String,
    file: Mutex<std::fs::File>,
    file_system: FileSystem,
}

impl SmsFile {
    /// Opens (creating, 0600, and its directory, 0700) the outbox file for appending, with a
    /// shared lock on it for the run: `purge --outbox` takes an exclusive one to rewrite the file
    /// (several campaigns may share it), so it cannot replace the file under a run still
    /// appending, whose lines would go to a file no longer in the directory. A file replaced
    /// while this waited for its lock is opened again.
    pub fn new(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::private::create_dir(parent)?;
        }
        let mut tries = 0;
        let file = loop {
            let file = crate::private::open(path, crate::private::Open::Append)?;
            tries += 1;
            // Alone on the file (no run appending, no purge): a line a killed run left
            // part-written is cut off, so this run's first line does not join it.
            if file.try_lock().is_ok() {
                mend_torn_tail(&file, path)?;
            }
            match file.lock_shared() {
                Ok(()) => {}
                // A file system without locks (some network mounts): the outbox still works,
                // without the guard against a purge of another campaign.
                Err(e)
                    if e.kind() == std::io::ErrorKind::Unsupported
                        || e.raw_os_error() == Some(rustix::io::Errno::NOLCK.raw_os_error()) =>
                {
                    tracing::warn!(
                        "{}: cannot lock it ({e}); writing without the lock",
                        path.display()
                    );
                    break file;
                }
                Err(e) => return Err(e),
            }
            // Replaced while this waited for its lock: open the new one (a path that keeps
            // changing under it is taken as it is after a few tries).
            if is_at(&file, path)? || tries == 10 {
                break file;
            }
        };
        Ok(SmsFile {
            faults: Faults::from_env(),
            path: path.to_path_buf(),
            name: path
                .file_name()
                .map_or_else(|| "sms".into(), |n| n.to_string_lossy().into_owned()),
            file_system: FileSystem::of(file.try_clone()?, path)?,
            file: Mutex::new(file),
        })
    }
}

/// Cuts off the end of the outbox after its last newline: what a run killed in the middle of a
/// `write` left of its line (the kernel stops a write between pages for SIGKILL). That message
/// was never recorded as sent: it is in the ledger as unknown, as it would be with a gateway
/// that got half a request. `file` is the appending handle, locked exclusively.
fn mend_torn_tail(file: &std::fs::File, path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut reader = std::fs::File::open(path)?;
    if !is_at(&reader, path)? || !is_at(file, path)? {
        return Ok(());
    }
    // Read back from the end a block at a time until a newline.
    let mut end = len;
    let mut keep = 0;
    let mut block = vec![0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let part = &mut block[..(end - start) as usize];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(part)?;
        if end == len && part.last() == Some(&b'\n') {
            return Ok(());
        }
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    tracing::warn!(
        "{}: cut off {} bytes at its end, part of a line from a run that was killed while \
         writing it",
        path.display(),
        len - keep
    );
    Ok(())
}

/// Whether `file` is still the file at `path`.
fn is_at(file: &std::fs::File, path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        Ok(true)
    }
}

impl Transport<SmsOut> for SmsFile {
    fn name(&self) -> &str {
        "file"
    }

    fn in_flight(&self, concurrency: usize) -> usize {
        concurrency.max(FILE_IN_FLIGHT)
    }

    fn sessions(&self, concurrency: usize) -> usize {
        self.in_flight(concurrency)
    }

    fn unsynced(&self) -> Option<FileSystem> {
        Some(self.file_system.clone())
    }

    fn send<'a>(&'a self, m: &'a SmsOut) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            if let Some(fault) = self.faults.take(&m.contact) {
                return fault;
            }
            let mut line = serde_json::to_vec(m).expect("an SMS serialises");
            line.push(b'\n');
            let mut f = self.file.lock().expect("SMS outbox lock");
            match append_whole(&mut f, &line) {
                Ok(offset) => Delivery::Sent {
                    provider_id: format!("{}/{}@{offset}", m.campaign, self.name),
                },
                Err(e) => Delivery::Transient {
                    error: format!("writing to {}: {e}", self.path.display()),
                    retry_after: None,
                },
            }
        })
    }
}

/// Appends `line` to `f` (opened for appending) in one `write`, which the kernel takes whole
/// unless the disk is full; returns the offset where the line starts. A write that fails
/// part-way is cut back off, so the file never holds part of a line and the message is a
/// transient failure, tried again whole.
fn append_whole(f: &mut std::fs::File, line: &[u8]) -> std::io::Result<u64> {
    use std::io::Seek;
    let mut written = 0;
    let failed = loop {
        if written == line.len() {
            break None;
        }
        match f.write(&line[written..]) {
            Ok(0) => break Some(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    // Appending leaves the file's position at the end of this process's last write, whatever
    // another process (a run of another campaign sharing the file) appended before it.
    let end = f.stream_position()?;
    let start = end - written as u64;
    let Some(error) = failed else {
        return Ok(start);
    };
    if written > 0 {
        // Cut back only when the part is still the file's end: a line that another process
        // appended after it cannot be taken away from it.
        match f.metadata()?.len() == end {
            true => f.set_len(start)?,
            false => tracing::warn!("a part of a line is left in the SMS outbox at byte {start}"),
        }
    }
    Err(error)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// The directory holds exactly `path`, private, with `bytes` in it.
    fn only(dir: &Path, path: &Path, bytes: &[u8]) {
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(names, [path.to_path_buf()]);
        assert_eq!(std::fs::read(path).unwrap(), bytes);
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_file_is_linked_whole_private_and_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.eml");
        let bytes = b"From: a\r\n\r\nbody\r\n".repeat(1000);
        assert!(
            super::write_unnamed(&path, &bytes).unwrap(),
            "O_TMPFILE works here"
        );
        only(dir.path(), &path, &bytes);
        let again = super::write_unnamed(&path, b"other").unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        only(dir.path(), &path, &bytes);
    }

    /// The SMS outbox after a run opens it over `before`.
    fn opened_over(before: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        std::fs::write(&path, before).unwrap();
        drop(super::SmsFile::new(&path).unwrap());
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn a_line_a_killed_run_left_part_written_is_cut_off() {
        let whole = b"{\"to\":\"+15555550101\"}\n{\"to\":\"+15555550102\"}\n".to_vec();
        assert_eq!(opened_over(&whole), whole, "whole lines are kept");
        let mut torn = whole.clone();
        torn.extend_from_slice(b"{\"to\":\"+1555");
        assert_eq!(opened_over(&torn), whole);
        // A part longer than the block read back at a time, and a file with no whole line.
        let mut long = whole.clone();
        long.extend(std::iter::repeat_n(b'x', 20_000));
        assert_eq!(opened_over(&long), whole);
        assert_eq!(opened_over(&[b'x'; 9000]), b"");
        assert_eq!(opened_over(b""), b"");
    }

    #[test]
    fn a_part_written_line_is_left_alone_while_another_run_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms.jsonl");
        std::fs::write(&path, b"{}\n{\"to\"").unwrap();
        let running = std::fs::File::open(&path).unwrap();
        running.lock_shared().unwrap();
        drop(super::SmsFile::new(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"{}\n{\"to\"");
    }

    #[test]
    fn the_portable_way_writes_aside_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.eml");
        super::write_renamed(&dir.path().join(".b.eml.tmp"), &path, b"whole").unwrap();
        only(dir.path(), &path, b"whole");
    }

    #[test]
    fn the_portable_way_leaves_no_temporary_file_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way: the rename fails once the file is written.
        let in_the_way = dir.path().join("c.eml");
        std::fs::create_dir(&in_the_way).unwrap();
        std::fs::write(in_the_way.join("x"), "x").unwrap();
        let tmp = dir.path().join(".c.eml.tmp");
        super::write_renamed(&tmp, &in_the_way, b"whole").unwrap_err();
        assert!(!tmp.exists(), "the temporary file is removed");
    }
}
