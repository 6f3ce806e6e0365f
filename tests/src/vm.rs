//! Real-kernel tests: boot Debian's own kernel in qemu with an initramfs built for one test, run
//! a shell script in it, and read back what it printed.
//!
//! The host kernel has no IPVS and no `dummy` links, so the IPVS backend is tested in a guest.
//! `scripts/vm/fetch.sh` (run by `scripts/install-test-deps.sh`) prepares the kernel, its
//! modules and the guest's tools in a cache directory; this module adds the test's binaries,
//! files and script, boots it and collects the result:
//!
//! ```no_run
//! use std::time::Duration;
//! use svcplane_tests::vm::{workspace_binary, Guest};
//!
//! let run = Guest::new()
//!     .binary(workspace_binary("svcplane"))
//!     .file_contents("/etc/demo/service.yaml", "kind: Service\n")
//!     .script("section ipvs\nipvsadm -Ln\nsection agent\nsvcplane --version\n")
//!     .timeout(Duration::from_secs(60))
//!     .run(); // panics, with the reason and the console's last lines, if the guest fails
//! assert_eq!(run.exit_code, 0, "{}", run.output);
//! assert!(run.section("ipvs").unwrap().contains("IP Virtual Server"));
//! ```
//!
//! In the guest: `/bin/sh` is dash, busybox supplies the usual applets, and the real `ip`
//! (iproute2), `ss`, `tc`, `bridge`, `nft`, `ipvsadm`, `conntrack` and `bash` are on the PATH;
//! loopback is up and the IPVS, conntrack, NAT, nftables, `dummy`, `veth` and `bridge` modules
//! are loaded. The script runs as root with `/etc/svcplane-vm/lib.sh` sourced (`section NAME`,
//! `retry TRIES DELAY CMD...`), stdin empty, stdout and stderr captured together.
//!
//! Environment: `SVCPLANE_VM_CACHE` (cache directory, default `/var/cache/svcplane-vm`),
//! `SVCPLANE_VM_VERBOSE=1` (echo the console and the script's output live to stderr),
//! `SVCPLANE_VM_KEEP=1` (keep the temporary directory with the initramfs and a `run-qemu.sh`),
//! `SVCPLANE_VM_KEEP_DEBUG=1` (copy binaries with their debug info; stripped by default, which
//! makes the initramfs several times smaller and the boot faster).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Default directory `scripts/vm/fetch.sh` fills; `SVCPLANE_VM_CACHE` overrides it.
pub const DEFAULT_CACHE: &str = "/var/cache/svcplane-vm";

/// Time allowed on top of the script's timeout for qemu to start, boot and power off; qemu is
/// killed when it is used up. Boot takes about 4 s of CPU under emulation (10–20 s of wall time
/// on a loaded 2-core machine); this leaves room for worse.
pub const BOOT_BUDGET: Duration = Duration::from_secs(120);

/// Console lines kept in errors.
const CONSOLE_TAIL: usize = 40;

const EXIT_MARKER: &str = "@@svcplane-vm-exit ";
const START_MARKER: &str = "@@svcplane-vm start";
const SECTION_MARKER: &str = "@@section ";

/// Why a guest did not produce a result. Each message says what to do or shows the console's
/// last lines.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The cache is missing or incomplete.
    #[error(
        "the test VM is not prepared: {0}\n\
         run scripts/install-test-deps.sh (as root) or scripts/vm/fetch.sh \
         (cache: SVCPLANE_VM_CACHE, default {DEFAULT_CACHE})"
    )]
    NotPrepared(String),
    /// A file for the initramfs could not be read or written.
    #[error("building the initramfs: {what}: {source}")]
    Initramfs {
        /// Which file or step.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A binary's shared libraries could not be listed.
    #[error("ldd {binary}: {reason}")]
    Libraries {
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// qemu could not be started.
    #[error("starting {qemu}: {source}")]
    QemuStart {
        /// The qemu binary.
        qemu: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// qemu ran past the script's timeout plus [`BOOT_BUDGET`] and was killed.
    #[error(
        "the guest did not finish within {limit:?}{started}; qemu was killed\n\
         --- last console lines ---\n{console}",
        started = if *script_started { " (the script had started)" } else { " (the script never started: boot hung)" }
    )]
    Hung {
        /// The hard limit that was reached.
        limit: Duration,
        /// Whether `/init` had reached the test script.
        script_started: bool,
        /// The console's last lines.
        console: String,
    },
    /// qemu exited without the guest reporting a result (kernel panic, bad initramfs, qemu
    /// error).
    #[error(
        "the guest ended without a result (qemu {status}){stderr}\n\
         --- last console lines ---\n{console}"
    )]
    NoResult {
        /// qemu's exit status.
        status: String,
        /// qemu's own error output, if any.
        stderr: String,
        /// The console's last lines.
        console: String,
    },
}

/// The cache directory `scripts/vm/fetch.sh` prepared.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SVCPLANE_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// A binary the workspace built into the same target directory as the running test (for
/// example `svcplane`, whose package is not this crate's, so `CARGO_BIN_EXE_svcplane` is not
/// set here). Panics, saying how to build it, when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("test binary lives in a target directory");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; `cargo test --workspace` builds it, or run `cargo build --bin {name}` first",
        path.display()
    );
    path
}

/// A guest to boot: what goes into its initramfs and how long it may run. Build it with the
/// methods below, then [`Guest::run`].
#[derive(Debug, Clone)]
pub struct Guest {
    binaries: Vec<(PathBuf, String)>,
    files: Vec<(Source, String, u32)>,
    script: String,
    memory_mb: u32,
    timeout: Duration,
    boot_budget: Duration,
    kernel_args: Vec<String>,
    cache: PathBuf,
}

#[derive(Debug, Clone)]
enum Source {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

impl Default for Guest {
    fn default() -> Self {
        Guest::new()
    }
}

impl Guest {
    /// A guest with no extra files, an empty script, 1024 MiB of memory and a 60 s script
    /// timeout.
    pub fn new() -> Guest {
        Guest {
            binaries: Vec::new(),
            files: Vec::new(),
            script: String::new(),
            memory_mb: 1024,
            timeout: Duration::from_secs(60),
            boot_budget: BOOT_BUDGET,
            kernel_args: Vec::new(),
            cache: cache_dir(),
        }
    }

    /// Adds a host-built, dynamically linked binary at `/usr/bin/<its file name>`, with the
    /// shared libraries `ldd` lists for it. The host's binaries are used as they are (no second,
    /// static build of the workspace: that would cost CI another full build); the guest runs the
    /// host's glibc, which is Debian 12's like the guest's tools.
    pub fn binary(self, host: impl AsRef<Path>) -> Guest {
        let host = host.as_ref();
        let name = host
            .file_name()
            .unwrap_or_else(|| panic!("{} has no file name", host.display()))
            .to_string_lossy()
            .into_owned();
        self.binary_at(host, &format!("/usr/bin/{name}"))
    }

    /// Like [`Guest::binary`], at a chosen guest path.
    pub fn binary_at(mut self, host: impl AsRef<Path>, guest_path: &str) -> Guest {
        self.binaries
            .push((host.as_ref().to_path_buf(), guest_path.to_string()));
        self
    }

    /// Copies a host file to `guest_path`, keeping its permission bits.
    pub fn file(mut self, host: impl AsRef<Path>, guest_path: &str) -> Guest {
        self.files.push((
            Source::Host(host.as_ref().to_path_buf()),
            guest_path.to_string(),
            0,
        ));
        self
    }

    /// Writes `contents` to `guest_path` (mode 0644).
    pub fn file_contents(mut self, guest_path: &str, contents: impl Into<Vec<u8>>) -> Guest {
        self.files.push((
            Source::Bytes(contents.into()),
            guest_path.to_string(),
            0o644,
        ));
        self
    }

    /// The shell script the guest runs (POSIX sh, with `/etc/svcplane-vm/lib.sh` sourced). Its
    /// exit status becomes [`GuestRun::exit_code`].
    pub fn script(mut self, text: impl Into<String>) -> Guest {
        self.script = text.into();
        self
    }

    /// Guest memory; the initramfs lives in it, so leave room for the binaries.
    pub fn memory_mb(mut self, mb: u32) -> Guest {
        self.memory_mb = mb;
        self
    }

    /// How long the script may run in the guest; it is killed then and
    /// [`GuestRun::timed_out`] is set. qemu itself is killed after this plus [`BOOT_BUDGET`].
    pub fn timeout(mut self, timeout: Duration) -> Guest {
        self.timeout = timeout;
        self
    }

    /// Time allowed on top of [`Guest::timeout`] before qemu is killed (default
    /// [`BOOT_BUDGET`]).
    pub fn boot_budget(mut self, budget: Duration) -> Guest {
        self.boot_budget = budget;
        self
    }

    /// The prepared cache to boot from (default [`cache_dir`]).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Guest {
        self.cache = dir.as_ref().to_path_buf();
        self
    }

    /// An extra kernel command-line argument.
    pub fn kernel_arg(mut self, arg: impl Into<String>) -> Guest {
        self.kernel_args.push(arg.into());
        self
    }

    /// Boots the guest and runs the script. Panics with the reason and the console's last lines
    /// when the guest cannot be prepared, does not boot, or hangs: a real-kernel test fails
    /// loudly, it never skips.
    pub fn run(self) -> GuestRun {
        match self.try_run() {
            Ok(run) => run,
            Err(e) => panic!("test VM failed: {e}"),
        }
    }

    /// Like [`Guest::run`], returning the failure instead of panicking.
    pub fn try_run(self) -> Result<GuestRun, VmError> {
        let prepared = Prepared::load(&self.cache)?;
        let _slot = VmSlot::acquire();
        let dir = tempfile::Builder::new()
            .prefix("svcplane-vm-")
            .tempdir()
            .map_err(|source| VmError::Initramfs {
                what: "temporary directory".into(),
                source,
            })?;
        let initramfs = dir.path().join("initramfs.cpio");
        let output = dir.path().join("output");
        self.write_initramfs(&prepared, dir.path(), &initramfs)?;
        let result = self.boot(&prepared, dir.path(), &initramfs, &output);
        if std::env::var_os("SVCPLANE_VM_KEEP").is_some() {
            let kept = dir.keep();
            eprintln!(
                "svcplane-vm: kept {} (initramfs.cpio, run-qemu.sh, output)",
                kept.display()
            );
        }
        result
    }

    fn write_initramfs(&self, prepared: &Prepared, tmp: &Path, out: &Path) -> Result<(), VmError> {
        let mut tree = Tree::default();
        tree.add_host_dir(&prepared.guest_root, "")?;
        let strip = std::env::var_os("SVCPLANE_VM_KEEP_DEBUG").is_none();
        for (i, (host, guest)) in self.binaries.iter().enumerate() {
            let source = if strip {
                stripped_copy(host, &tmp.join(format!("bin{i}")))?
            } else {
                host.clone()
            };
            tree.add_file(guest, Source::Host(source), 0o755);
            for lib in shared_libraries(host)? {
                let guest_lib = lib.to_string_lossy().into_owned();
                tree.add_file(&guest_lib, Source::Host(lib), 0o755);
            }
        }
        for (source, guest, mode) in &self.files {
            let mode = match (source, *mode) {
                (Source::Host(p), 0) => {
                    fs::metadata(p)
                        .map_err(|source| VmError::Initramfs {
                            what: p.display().to_string(),
                            source,
                        })?
                        .permissions()
                        .mode()
                        & 0o7777
                }
                (_, m) => m,
            };
            tree.add_file(guest, source.clone(), mode);
        }
        tree.add_file(
            "/svcplane/script",
            Source::Bytes(self.script.clone().into_bytes()),
            0o755,
        );
        let verbose = std::env::var_os("SVCPLANE_VM_VERBOSE").is_some();
        let config = format!(
            "TIMEOUT={}\nVERBOSE={}\n",
            self.timeout.as_secs().max(1),
            u8::from(verbose)
        );
        tree.add_file(
            "/svcplane/config",
            Source::Bytes(config.into_bytes()),
            0o644,
        );
        tree.write_cpio(out)
    }

    fn boot(
        &self,
        prepared: &Prepared,
        tmp: &Path,
        initramfs: &Path,
        output: &Path,
    ) -> Result<GuestRun, VmError> {
        let args = self.qemu_args(prepared, initramfs, output);
        let script = format!(
            "#!/bin/sh\n# Boots the kept initramfs by hand (SVCPLANE_VM_KEEP=1).\nexec {} {}\n",
            prepared.qemu.display(),
            args.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = fs::write(tmp.join("run-qemu.sh"), script);

        let limit = self.timeout + self.boot_budget;
        let started = Instant::now();
        let mut child = Command::new(&prepared.qemu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| VmError::QemuStart {
                qemu: prepared.qemu.clone(),
                source,
            })?;
        let verbose = std::env::var_os("SVCPLANE_VM_VERBOSE").is_some();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if verbose {
                    eprintln!("guest| {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr_pipe.read_to_string(&mut s);
            s
        });

        let mut console = Vec::new();
        let mut boot_time = None;
        let deadline = started + limit;
        let mut hung = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if boot_time.is_none() && line.contains(START_MARKER) {
                        boot_time = Some(started.elapsed());
                    }
                    console.push(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        hung = true;
                        let _ = child.kill();
                        break;
                    }
                }
            }
        }
        let status = child.wait().map_err(|source| VmError::QemuStart {
            qemu: prepared.qemu.clone(),
            source,
        })?;
        let total_time = started.elapsed();
        let _ = reader.join();
        let stderr = stderr_reader.join().unwrap_or_default();
        let tail = console_tail(&console);
        if hung {
            return Err(VmError::Hung {
                limit,
                script_started: boot_time.is_some(),
                console: tail,
            });
        }
        let raw = fs::read(output).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((body, exit_code, timed_out)) = parse_output(&text) else {
            return Err(VmError::NoResult {
                status: status.to_string(),
                stderr: if stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!("\n--- qemu stderr ---\n{}", stderr.trim_end())
                },
                console: tail,
            });
        };
        Ok(GuestRun {
            exit_code,
            timed_out,
            output: body,
            console: console.join("\n"),
            boot_time: boot_time.unwrap_or(total_time),
            total_time,
        })
    }

    fn qemu_args(&self, prepared: &Prepared, initramfs: &Path, output: &Path) -> Vec<String> {
        let kvm = kvm_usable();
        let mut append = vec![
            "console=ttyS0",
            "panic=-1",
            "quiet",
            // Skip what costs time under emulation and does not matter to a test. Measured in
            // guest instructions (qemu -icount): the crypto self-tests are more than half of
            // the kernel's boot, write-protecting kernel data (with its W+X scan) a tenth.
            // The timer and TSC checks wait on wall-clock time, which emulation stretches.
            "cryptomgr.notests",
            "rodata=off",
            "no_timer_check",
            "tsc=reliable",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        append.extend(self.kernel_args.iter().cloned());
        let args: Vec<String> = vec![
            "-machine".into(),
            "pc".into(),
            "-accel".into(),
            if kvm { "kvm" } else { "tcg" }.into(),
            "-cpu".into(),
            "qemu64".into(),
            "-smp".into(),
            "1".into(),
            "-m".into(),
            self.memory_mb.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-L".into(),
            prepared.firmware_dir.display().to_string(),
            "-bios".into(),
            prepared.bios.clone(),
            // The uncompressed ELF kernel boots through its PVH entry point.
            "-kernel".into(),
            prepared.vmlinux.display().to_string(),
            "-initrd".into(),
            initramfs.display().to_string(),
            "-append".into(),
            append.join(" "),
            "-serial".into(),
            "stdio".into(),
            "-serial".into(),
            format!("file:{}", output.display()),
        ];
        args
    }
}

/// What a guest run produced.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// The script's exit status (137 when it was killed at its timeout).
    pub exit_code: i32,
    /// The script ran into [`Guest::timeout`] and was killed.
    pub timed_out: bool,
    /// Everything the script printed (stdout and stderr together), section markers included.
    pub output: String,
    /// The serial console: kernel messages (errors only, the kernel runs `quiet`) and `/init`'s
    /// progress lines.
    pub console: String,
    /// From starting qemu to the script starting in the guest.
    pub boot_time: Duration,
    /// From starting qemu to qemu exiting.
    pub total_time: Duration,
}

impl GuestRun {
    /// The lines printed after `section NAME` up to the next section or the end, or `None` when
    /// the script never started that section.
    pub fn section(&self, name: &str) -> Option<String> {
        self.sections()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body)
    }

    /// Every section in order: (name, text).
    pub fn sections(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in self.output.lines() {
            if let Some(name) = line.strip_prefix(SECTION_MARKER) {
                out.push((name.trim().to_string(), String::new()));
            } else if let Some((_, body)) = out.last_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        out
    }

    /// Panics, showing the output and the console, unless the script exited 0 in time.
    pub fn assert_success(&self) -> &GuestRun {
        assert!(
            self.exit_code == 0 && !self.timed_out,
            "guest script failed: exit {} timed_out {}\n--- output ---\n{}\n--- console ---\n{}",
            self.exit_code,
            self.timed_out,
            self.output,
            console_tail(&self.console.lines().map(String::from).collect::<Vec<_>>())
        );
        self
    }
}

/// Splits the guest's output channel into (script output, exit code, timed out).
fn parse_output(text: &str) -> Option<(String, i32, bool)> {
    let at = text.rfind(EXIT_MARKER)?;
    if at > 0 && !text[..at].ends_with('\n') {
        return None;
    }
    let mut fields = text[at + EXIT_MARKER.len()..].split_whitespace();
    let code = fields.next()?.parse().ok()?;
    let timed_out = fields.next()? == "1";
    Some((text[..at].to_string(), code, timed_out))
}

fn console_tail(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(CONSOLE_TAIL);
    if lines.is_empty() {
        "(the console printed nothing)".into()
    } else {
        lines[start..].join("\n")
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// KVM only when `/dev/kvm` opens and the CPU advertises hardware virtualisation; otherwise
/// qemu emulates (TCG).
fn kvm_usable() -> bool {
    let cpu_flags = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has_vt = cpu_flags
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    has_vt
        && fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// What `scripts/vm/fetch.sh` left in the cache.
struct Prepared {
    vmlinux: PathBuf,
    guest_root: PathBuf,
    qemu: PathBuf,
    firmware_dir: PathBuf,
    bios: String,
}

impl Prepared {
    fn load(cache: &Path) -> Result<Prepared, VmError> {
        let vm = cache.join("vm");
        let env_path = vm.join("vm.env");
        let env = fs::read_to_string(&env_path)
            .map_err(|e| VmError::NotPrepared(format!("{}: {e}", env_path.display())))?;
        let vars: BTreeMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
        let var = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| VmError::NotPrepared(format!("{} has no {k}", env_path.display())))
        };
        let prepared = Prepared {
            vmlinux: vm.join("vmlinux"),
            guest_root: vm.join("guest"),
            qemu: PathBuf::from(var("QEMU")?),
            firmware_dir: PathBuf::from(var("QEMU_FIRMWARE_DIR")?),
            bios: var("BIOS")?,
        };
        for path in [
            &prepared.vmlinux,
            &prepared.guest_root.join("init"),
            &prepared.qemu,
            &prepared.firmware_dir.join(&prepared.bios),
        ] {
            if !path.exists() {
                return Err(VmError::NotPrepared(format!(
                    "{} is missing",
                    path.display()
                )));
            }
        }
        Ok(prepared)
    }
}

/// Guests running at once in this process: each qemu keeps a core busy under emulation.
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

struct VmSlot;

impl VmSlot {
    fn acquire() -> VmSlot {
        let max = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(2);
        let (lock, cvar) = &RUNNING;
        let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= max {
            running = cvar.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        VmSlot
    }
}

impl Drop for VmSlot {
    fn drop(&mut self) {
        let (lock, cvar) = &RUNNING;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        cvar.notify_one();
    }
}

/// A copy of `host` without debug sections at `dest`, or `host` itself when `objcopy` is not
/// there or fails.
fn stripped_copy(host: &Path, dest: &Path) -> Result<PathBuf, VmError> {
    if !host.is_file() {
        return Err(VmError::Initramfs {
            what: host.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such binary"),
        });
    }
    let ok = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(host)
        .arg(dest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    Ok(if ok {
        dest.to_path_buf()
    } else {
        host.to_path_buf()
    })
}

/// The shared libraries and the ELF interpreter a dynamically linked binary loads, as `ldd`
/// resolves them on the host. A static binary has none.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, VmError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| VmError::Libraries {
            binary: binary.to_path_buf(),
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(VmError::Libraries {
            binary: binary.to_path_buf(),
            reason: format!("{}{}", text, String::from_utf8_lossy(&out.stderr)),
        });
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            return Err(VmError::Libraries {
                binary: binary.to_path_buf(),
                reason: line.to_string(),
            });
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)" has no file.
        let path = match line.split_once("=> ") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// The initramfs's contents by guest path (no leading `/`), written as one newc cpio archive.
#[derive(Default)]
struct Tree {
    entries: BTreeMap<String, Entry>,
}

enum Entry {
    Dir(u32),
    File(Source, u32),
    Symlink(String),
}

impl Tree {
    /// Guest paths in the usr-merged layout the cache uses: `/lib/x` is stored as `usr/lib/x`,
    /// because `lib` is a symlink to `usr/lib` in the guest.
    fn normalize(guest: &str) -> String {
        let p = guest.trim_start_matches('/');
        for top in ["bin/", "sbin/", "lib/", "lib64/"] {
            if p.starts_with(top) {
                return format!("usr/{p}");
            }
        }
        p.to_string()
    }

    fn add_parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let dir = &path[..at + i];
            self.entries
                .entry(dir.to_string())
                .or_insert(Entry::Dir(0o755));
            at += i + 1;
        }
    }

    fn add_file(&mut self, guest: &str, source: Source, mode: u32) {
        let path = Tree::normalize(guest);
        self.add_parents(&path);
        self.entries.insert(path, Entry::File(source, mode));
    }

    /// Adds a prepared directory tree as it is (symlinks stay symlinks).
    fn add_host_dir(&mut self, host: &Path, prefix: &str) -> Result<(), VmError> {
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |source| VmError::Initramfs { what, source }
        };
        let mut names: Vec<_> = fs::read_dir(host)
            .map_err(io(host))?
            .collect::<Result<_, _>>()
            .map_err(io(host))?;
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let path = entry.path();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            let mode = meta.mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).map_err(io(&path))?;
                self.entries
                    .insert(name, Entry::Symlink(target.to_string_lossy().into_owned()));
            } else if meta.is_dir() {
                self.entries.insert(name.clone(), Entry::Dir(mode));
                self.add_host_dir(&path, &format!("{name}/"))?;
            } else {
                self.entries
                    .insert(name, Entry::File(Source::Host(path), mode));
            }
        }
        Ok(())
    }

    fn write_cpio(&self, out: &Path) -> Result<(), VmError> {
        let err = |what: String| move |source| VmError::Initramfs { what, source };
        let file = fs::File::create(out).map_err(err(out.display().to_string()))?;
        let mut w = CpioWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir(mode) => w.entry(path, 0o040000 | mode, &[]),
                Entry::Symlink(target) => w.entry(path, 0o120000 | 0o777, target.as_bytes()),
                Entry::File(Source::Bytes(b), mode) => w.entry(path, 0o100000 | mode, b),
                Entry::File(Source::Host(p), mode) => {
                    let data = fs::read(p).map_err(err(p.display().to_string()))?;
                    w.entry(path, 0o100000 | mode, &data)
                }
            }
            .map_err(err(out.display().to_string()))?;
        }
        w.finish().map_err(err(out.display().to_string()))
    }
}

/// Writes the "newc" cpio format the kernel unpacks into its initial root file system
/// (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII
/// header of hex fields, the NUL-terminated name, padding to 4 bytes, the data, padding to 4.
struct CpioWriter<W: std::io::Write> {
    w: W,
    written: u64,
    ino: u32,
}

impl<W: std::io::Write> CpioWriter<W> {
    fn new(w: W) -> Self {
        CpioWriter {
            w,
            written: 0,
            ino: 1,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let n = (4 - self.written % 4) % 4;
        self.put(&[0u8; 3][..n as usize])
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "file over 4 GiB")
            })?,
            0, // dev major
            0, // dev minor
            0, // rdev major
            0, // rdev minor
            name.len() as u32 + 1,
            0, // check
        ];
        self.ino += 1;
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.entry("TRAILER!!!", 0, &[])?;
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_newc_header_layout() {
        let mut buf = Vec::new();
        let mut w = CpioWriter::new(&mut buf);
        w.entry("ab", 0o100644, b"xyz").unwrap();
        w.finish().unwrap();
        // 110-byte header + "ab\0" = 113, padded to 116; 3 data bytes padded to 4.
        assert_eq!(&buf[..6], b"070701");
        assert_eq!(&buf[6..14], b"00000001"); // inode
        assert_eq!(&buf[14..22], b"000081A4"); // mode
        assert_eq!(&buf[54..62], b"00000003"); // file size
        assert_eq!(&buf[94..102], b"00000003"); // name size with NUL
        assert_eq!(&buf[110..113], b"ab\0");
        assert_eq!(&buf[116..119], b"xyz");
        assert_eq!(buf[119], 0);
        assert_eq!(&buf[120..126], b"070701");
        let trailer_name = 120 + 110;
        assert_eq!(&buf[trailer_name..trailer_name + 11], b"TRAILER!!!\0");
        assert_eq!(buf.len() % 4, 0);
    }

    #[test]
    fn guest_paths_follow_the_usr_merged_layout() {
        assert_eq!(
            Tree::normalize("/lib/x86_64-linux-gnu/libc.so.6"),
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(
            Tree::normalize("/lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(Tree::normalize("/usr/bin/svcplane"), "usr/bin/svcplane");
        assert_eq!(Tree::normalize("/etc/x.yaml"), "etc/x.yaml");
    }

    #[test]
    fn parents_come_before_children_in_the_archive() {
        let mut tree = Tree::default();
        tree.add_file("/a/b/c", Source::Bytes(vec![]), 0o644);
        tree.add_file("/a-b", Source::Bytes(vec![]), 0o644);
        let order: Vec<&str> = tree.entries.keys().map(String::as_str).collect();
        assert_eq!(order, ["a", "a-b", "a/b", "a/b/c"]);
    }

    #[test]
    fn output_channel_parses_exit_code_and_timeout() {
        assert_eq!(
            parse_output("hello\n@@svcplane-vm-exit 3 0\n"),
            Some(("hello\n".to_string(), 3, false))
        );
        assert_eq!(
            parse_output("@@svcplane-vm-exit 137 1\n"),
            Some((String::new(), 137, true))
        );
        assert_eq!(parse_output("partial output"), None);
    }

    #[test]
    fn sections_split_the_output() {
        let run = GuestRun {
            exit_code: 0,
            timed_out: false,
            output: "pre\n@@section a\n1\n2\n@@section b\n@@section c\n3\n".into(),
            console: String::new(),
            boot_time: Duration::ZERO,
            total_time: Duration::ZERO,
        };
        assert_eq!(run.section("a").as_deref(), Some("1\n2\n"));
        assert_eq!(run.section("b").as_deref(), Some(""));
        assert_eq!(run.section("c").as_deref(), Some("3\n"));
        assert_eq!(run.section("d"), None);
    }

    #[test]
    fn ldd_lists_the_interpreter_and_libc_of_a_dynamic_binary() {
        let libs = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(
            libs.iter()
                .any(|p| p.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
        assert!(
            libs.iter().any(|p| p.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }
}
