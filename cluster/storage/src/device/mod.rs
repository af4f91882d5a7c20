//! Where the bytes live: one regular file or block device, opened with O_DIRECT and an
//! exclusive `flock`, accessed with positioned reads and writes on aligned buffers from
//! blocking threads. The optional fault layer sits here so every engine path goes through it,
//! and so does the latency recorder (which times the fault layer's delay too).

pub mod aligned;
pub mod fault;
pub mod latency;
pub mod smart;

use crate::error::StorageError;
use fault::{FaultLayer, FaultOp};
use latency::{IoKind, LatencyRecorder};
use smart::SmartProbe;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open, exclusively locked device.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    size: u64,
    direct: bool,
    fault: Option<Arc<FaultLayer>>,
    latency: LatencyRecorder,
    smart: SmartProbe,
}

fn io_err(path: &Path, op: &'static str, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Size of a block device, through the BLKGETSIZE64 ioctl.
fn block_device_size(file: &File) -> io::Result<u64> {
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    let mut size: u64 = 0;
    // SAFETY: the ioctl writes one u64 through the pointer we pass.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

impl Device {
    /// Opens `path` read-write with O_DIRECT (falling back to buffered I/O plus fdatasync
    /// where the filesystem refuses O_DIRECT, e.g. tmpfs) and takes an exclusive lock, so a
    /// second process cannot open the same device.
    pub fn open(path: &Path, fault: Option<Arc<FaultLayer>>) -> Result<Device, StorageError> {
        let mut direct = true;
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::warn!(path = %path.display(), "O_DIRECT refused; using buffered I/O");
                direct = false;
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| io_err(path, "open", e))?
            }
            Err(e) => return Err(io_err(path, "open", e)),
        };
        // SAFETY: flock on a valid descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StorageError::Locked {
                    path: path.to_path_buf(),
                });
            }
            return Err(io_err(path, "flock", e));
        }
        let meta = file.metadata().map_err(|e| io_err(path, "stat", e))?;
        let size = if meta.file_type().is_block_device() {
            block_device_size(&file).map_err(|e| io_err(path, "BLKGETSIZE64", e))?
        } else {
            meta.len()
        };
        Ok(Device {
            file,
            path: path.to_path_buf(),
            size,
            direct,
            fault,
            latency: LatencyRecorder::default(),
            smart: SmartProbe::new(path),
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether O_DIRECT is in effect.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The fault layer, when test configuration installed one.
    pub fn fault(&self) -> Option<&Arc<FaultLayer>> {
        self.fault.as_ref()
    }

    /// Recent read and write latencies (the heartbeat's health report).
    pub fn latency(&self) -> &LatencyRecorder {
        &self.latency
    }

    /// The device's S.M.A.R.T. verdict ("not available" for files and loop devices).
    pub fn smart(&self) -> smart::SmartStatus {
        self.smart.status()
    }

    fn check_fault(&self, op: FaultOp) -> io::Result<bool> {
        match &self.fault {
            None => Ok(false),
            Some(f) => {
                let a = f.on(op);
                if a.eio {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
                Ok(a.corrupt)
            }
        }
    }

    /// Fills `buf` from device offset `off` (aligned buffer and offset).
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let t = std::time::Instant::now();
        let r = self.read_at_untimed(buf, off);
        self.latency.record(IoKind::Read, t.elapsed());
        r
    }

    fn read_at_untimed(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let corrupt = self.check_fault(FaultOp::Read)?;
        let mut done = 0usize;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: rest is a valid writable region of rest.len() bytes.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    rest.as_mut_ptr().cast(),
                    rest.len(),
                    (off + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past device end",
                ));
            }
            done += n as usize;
        }
        if corrupt && !buf.is_empty() {
            let i = buf.len() / 2;
            buf[i] ^= 0x5a;
            buf[64.min(buf.len() - 1)] ^= 0x01;
        }
        Ok(())
    }

    /// Writes `bufs` back to back from device offset `off` (each aligned) with pwritev.
    pub fn write_vectored_at(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        let t = std::time::Instant::now();
        let r = self.write_vectored_untimed(bufs, off);
        self.latency.record(IoKind::Write, t.elapsed());
        r
    }

    fn write_vectored_untimed(&self, bufs: &[&[u8]], off: u64) -> io::Result<()> {
        if self.check_fault(FaultOp::Write)? {
            // Corrupt what reaches the device: flip a byte of a private copy of the first buffer.
            let mut first = aligned::AlignedBuf::zeroed(bufs[0].len());
            first.as_mut_slice().copy_from_slice(bufs[0]);
            let i = (bufs[0].len() / 2).max(64);
            first.as_mut_slice()[i.min(bufs[0].len() - 1)] ^= 0x5a;
            let mut v: Vec<&[u8]> = vec![first.as_slice()];
            v.extend_from_slice(&bufs[1..]);
            return self.pwritev_all(&v, off);
        }
        self.pwritev_all(bufs, off)
    }

    fn pwritev_all(&self, bufs: &[&[u8]], mut off: u64) -> io::Result<()> {
        const MAX_IOV: usize = 512;
        let mut iov: Vec<libc::iovec> = bufs
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut _,
                iov_len: b.len(),
            })
            .collect();
        let mut start = 0usize;
        while start < iov.len() {
            let end = (start + MAX_IOV).min(iov.len());
            let chunk = &iov[start..end];
            // SAFETY: every iovec points into a live buffer borrowed for this call.
            let n = unsafe {
                libc::pwritev(
                    self.file.as_raw_fd(),
                    chunk.as_ptr(),
                    chunk.len() as libc::c_int,
                    off as libc::off_t,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "device accepted no bytes",
                ));
            }
            let mut n = n as usize;
            off += n as u64;
            // Skip fully written iovecs; trim a partly written one.
            while n > 0 {
                let v = &mut iov[start];
                if n >= v.iov_len {
                    n -= v.iov_len;
                    start += 1;
                } else {
                    // SAFETY: advancing within the same buffer.
                    v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) }.cast();
                    v.iov_len -= n;
                    n = 0;
                }
            }
        }
        Ok(())
    }

    /// Writes one aligned buffer at `off`.
    pub fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.write_vectored_at(&[buf], off)
    }

    /// Makes every completed write durable (fdatasync).
    pub fn sync(&self) -> io::Result<()> {
        let t = std::time::Instant::now();
        let r = self
            .check_fault(FaultOp::Sync)
            .and_then(|_| self.file.sync_data());
        self.latency.record(IoKind::Write, t.elapsed());
        r
    }
}

/// Creates `path` as a regular file of `size` bytes (allocated with posix_fallocate where the
/// filesystem supports it) if it does not exist, or grows a smaller regular file to `size`;
/// block devices are left as they are.
pub fn ensure_sized(path: &Path, size: u64) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err(path, "create", e))?;
    let meta = f.metadata().map_err(|e| io_err(path, "stat", e))?;
    if meta.file_type().is_file() && meta.len() < size {
        // Allocate the blocks up front, so the file behaves like a device: no allocation
        // inside later durable writes, and no ENOSPC from the host filesystem mid-append.
        // SAFETY: posix_fallocate on a valid descriptor we own.
        let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, size as libc::off_t) };
        if rc != 0 {
            f.set_len(size).map_err(|e| io_err(path, "set_len", e))?;
        }
    }
    Ok(())
}
