//! Docker's default seccomp profile, compiled for one container and loaded on the calling
//! thread (issue 4). This module owns the translation of moby's default profile
//! (`profiles/seccomp/default.json`, maintained today in `moby/profiles`) into a classic BPF
//! program for the container's capability set: [`default_filter`] builds the rules from the
//! tables below and compiles them with `seccompiler` (rust-vmm; pure Rust, no libseccomp),
//! and [`load`] installs a program on the current thread. It must not decide *whether* a
//! container is confined (`privileged` and `seccomp=unconfined` are settled in
//! [`super::spec`]), must never touch another thread (no `SECCOMP_FILTER_FLAG_TSYNC`), and
//! needs no `unsafe`.
//!
//! Where the translation differs from runc running Docker's JSON through libseccomp:
//! * Names resolve per architecture as libseccomp resolves them: a name the architecture
//!   lacks (`chown32`, `socketcall`, `_llseek`, the arm and s390 extras …) is skipped.
//! * Only the native ABI is admitted. seccompiler's program kills the process on any other
//!   audit architecture, so the i386 and x32 ABIs that Docker also admits on x86_64 (and
//!   arm on aarch64) are refused: a 32-bit binary dies at its first system call.
//! * Every rule of the profile allows, except `clone3` → `ENOSYS`. A seccompiler filter has
//!   one match action, so that rule is a hand-written prefix (`clone3_prefix`).
//! * `includes.minKernel: 4.8` (`ptrace` for everyone) is taken as met.
//! * [`load`] also sets `no_new_privs`, which seccompiler always does; see its docs.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, sock_filter,
};

use super::spec::Capability;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("no seccomp syscall table for the {arch} architecture (wharf has x86_64 and aarch64)")]
    UnsupportedArch { arch: &'static str },
    /// A system call an argument rule needs has no number here: a bug in the tables.
    #[error("seccomp: system call {name:?} has no number on this architecture")]
    MissingSyscall { name: &'static str },
    #[error("seccomp: compiling Docker's default profile to BPF: {source}")]
    Compile {
        #[source]
        source: seccompiler::BackendError,
    },
    #[error("seccomp: the filter is {len} BPF instructions, over the kernel's limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("seccomp: loading the filter on the current thread: {source}")]
    Load {
        #[source]
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------
// The profile
// ---------------------------------------------------------------------------------------
//
// Translated from moby/profiles `seccomp/default_linux.go` and the `default.json` generated
// from it, at commit 02e898b137ae (2026: after the AF_ALG change of moby/moby#52494, with
// the socket-domain allow-list and the LoongArch entry). The tables keep upstream's order
// and grouping so that a diff against a newer profile is easy to read.

/// `[accept accept4 …]` → `&["accept", "accept4", …]`.
macro_rules! names {
    ($($name:ident)*) => {
        &[$(stringify!($name)),*]
    };
}

/// The first entry of `syscalls`: allowed for every container.
const ALLOWED: &[&str] = names! {
    accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
    chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
    epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
    exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
    fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
    flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
    fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
    futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
    getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
    getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
    getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32
    getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel
    ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
    io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
    landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
    listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
    map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat
    mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl
    msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
    _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
    pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
    process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
    readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
    removexattr removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe rmdir
    rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
    sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
    sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
    sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
    semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
    setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
    setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
    sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount
    statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
    timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
    tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat
    utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
};

/// Allowed for every container on Linux ≥ 4.8 (`includes.minKernel`), before which
/// `ptrace` could bypass seccomp. wharf needs far newer kernels, so this is unconditional.
const ALLOWED_SINCE_4_8: &[&str] = names! { process_vm_readv process_vm_writev ptrace };

/// Allowed on these architectures only (`includes.arches`, Docker's names for them).
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["ppc64le"], names! { sync_file_range2 swapcontext }),
    (
        &["arm", "arm64"],
        names! {
            arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls
        },
    ),
    (&["amd64", "x32"], names! { arch_prctl }),
    (&["amd64", "x32", "x86"], names! { modify_ldt }),
    (
        &["s390", "s390x"],
        names! { s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr },
    ),
    (&["riscv64"], names! { riscv_flush_icache }),
];

/// Allowed when the container holds the capability (`includes.caps`).
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (Capability::DacReadSearch, names! { open_by_handle_at }),
    (
        Capability::SysAdmin,
        names! {
            bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
            lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
            open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
            umount umount2 unshare
        },
    ),
    (Capability::SysBoot, names! { reboot }),
    (Capability::SysChroot, names! { chroot }),
    (
        Capability::SysModule,
        names! { delete_module init_module finit_module },
    ),
    (Capability::SysPacct, names! { acct }),
    (
        Capability::SysPtrace,
        names! { kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace },
    ),
    (Capability::SysRawio, names! { iopl ioperm }),
    (
        Capability::SysTime,
        names! { settimeofday stime clock_settime clock_settime64 },
    ),
    (Capability::SysTtyConfig, names! { vhangup }),
    (
        Capability::SysNice,
        names! { get_mempolicy mbind set_mempolicy set_mempolicy_home_node },
    ),
    (Capability::Syslog, names! { syslog }),
    (Capability::Bpf, names! { bpf }),
    (Capability::Perfmon, names! { perf_event_open }),
];

/// `personality(2)` is allowed with exactly these arguments: `PER_LINUX`, `PER_LINUX32`,
/// `UNAME26`, `UNAME26 | PER_LINUX32`, and `0xffffffff` (query the current persona).
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];

/// `clone(2)` without `CAP_SYS_ADMIN` must not set any of `CLONE_NEWNS | CLONE_NEWUTS |
/// CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `socket(2)` is allowed for these address families (`<linux/socket.h>`); the rest, and
/// any family added after `AF_MCTP`, are refused. Upstream's reasons for the gaps:
/// * removed from the kernel: `AF_DECnet` (12, Linux 6.1), `AF_ECONET` (19, 3.5),
///   `AF_ATMSVC` (20, 7.2), `AF_IRDA` (23, 4.17), `AF_WANPIPE` (25, 2.6.21), `AF_ISDN` (34,
///   7.1), `AF_CAIF` (37, 7.1);
/// * `AF_ALG` (38): the kernel crypto API, CVE-2026-31431 ("Copy Fail");
/// * `AF_VSOCK` (40): host/guest sockets, global across network namespaces by default.
///
/// `socketcall(2)` (32-bit ABIs only) cannot be filtered this way, but those ABIs are
/// refused here altogether.
const SOCKET_DOMAINS: &[(&str, u64)] = &[
    ("AF_UNIX", 1),
    ("AF_INET", 2),
    ("AF_AX25", 3),
    ("AF_IPX", 4),
    ("AF_APPLETALK", 5),
    ("AF_NETROM", 6),
    ("AF_BRIDGE", 7),
    ("AF_ATMPVC", 8),
    ("AF_X25", 9),
    ("AF_INET6", 10),
    ("AF_ROSE", 11),
    ("AF_NETBEUI", 13),
    ("AF_SECURITY", 14),
    ("AF_KEY", 15),
    ("AF_NETLINK", 16),
    ("AF_PACKET", 17),
    ("AF_ASH", 18),
    ("AF_RDS", 21),
    ("AF_SNA", 22),
    ("AF_PPPOX", 24),
    ("AF_LLC", 26),
    ("AF_IB", 27),
    ("AF_MPLS", 28),
    ("AF_CAN", 29),
    ("AF_TIPC", 30),
    ("AF_BLUETOOTH", 31),
    ("AF_IUCV", 32),
    ("AF_RXRPC", 33),
    ("AF_PHONET", 35),
    ("AF_IEEE802154", 36),
    ("AF_NFC", 39),
    ("AF_KCM", 41),
    ("AF_QIPCRTR", 42),
    ("AF_SMC", 43),
    ("AF_XDP", 44),
    ("AF_MCTP", 45),
];

// ---------------------------------------------------------------------------------------
// System call numbers
// ---------------------------------------------------------------------------------------

/// `[SYS_read SYS_cachestat = 451 …]` → `&[("read", libc::SYS_read), ("cachestat", 451), …]`:
/// the `libc` crate's number, or the kernel's where the crate does not have the call yet.
#[allow(unused_macros)] // unused on architectures without a table
macro_rules! numbers {
    ($($sys:ident $(= $nr:literal)?)*) => {
        &[$((
            $crate::runtime::seccomp::without_sys_prefix(stringify!($sys)),
            numbers!(@nr $sys $($nr)?),
        )),*]
    };
    (@nr $sys:ident) => { libc::$sys };
    (@nr $sys:ident $nr:literal) => { $nr };
}

/// `"SYS_read"` → `"read"`, at compile time.
#[allow(dead_code)] // unused on architectures without a table
const fn without_sys_prefix(name: &'static str) -> &'static str {
    let (prefix, rest) = name.as_bytes().split_at(4);
    assert!(
        matches!(prefix, b"SYS_"),
        "syscall table entries are named SYS_<name>"
    );
    match std::str::from_utf8(rest) {
        Ok(rest) => rest,
        Err(_) => panic!("not UTF-8"),
    }
}

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
mod arch {
    use seccompiler::TargetArch;

    pub const TARGET: Option<TargetArch> = Some(TargetArch::x86_64);
    /// Docker's name for the architecture, as in `includes.arches`.
    pub const DOCKER_ARCH: &str = "amd64";
    /// `AUDIT_ARCH_X86_64`: `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
    pub const AUDIT_ARCH: u32 = 0xC000_003E;

    /// Every name of the profile that exists on x86_64. The explicit numbers come from
    /// `arch/x86/entry/syscalls/syscall_64.tbl`; from 424 on they are shared by all
    /// architectures.
    pub const SYSCALLS: &[(&str, i64)] = numbers! {
        SYS_accept SYS_accept4 SYS_access SYS_acct SYS_adjtimex SYS_alarm SYS_arch_prctl SYS_bind
        SYS_bpf SYS_brk SYS_capget SYS_capset SYS_chdir SYS_chmod SYS_chown SYS_chroot
        SYS_clock_adjtime SYS_clock_getres SYS_clock_gettime SYS_clock_nanosleep SYS_clock_settime
        SYS_clone SYS_clone3 SYS_close SYS_close_range SYS_connect SYS_copy_file_range SYS_creat
        SYS_delete_module SYS_dup SYS_dup2 SYS_dup3 SYS_epoll_create SYS_epoll_create1
        SYS_epoll_ctl SYS_epoll_ctl_old SYS_epoll_pwait SYS_epoll_pwait2 SYS_epoll_wait
        SYS_epoll_wait_old SYS_eventfd SYS_eventfd2 SYS_execve SYS_execveat SYS_exit SYS_exit_group
        SYS_faccessat SYS_faccessat2 SYS_fadvise64 SYS_fallocate SYS_fanotify_init
        SYS_fanotify_mark SYS_fchdir SYS_fchmod SYS_fchmodat SYS_fchmodat2 SYS_fchown SYS_fchownat
        SYS_fcntl SYS_fdatasync SYS_fgetxattr SYS_finit_module SYS_flistxattr SYS_flock SYS_fork
        SYS_fremovexattr SYS_fsconfig SYS_fsetxattr SYS_fsmount SYS_fsopen SYS_fspick SYS_fstat
        SYS_fstatfs SYS_fsync SYS_ftruncate SYS_futex SYS_futex_waitv SYS_futimesat
        SYS_get_mempolicy SYS_get_robust_list SYS_get_thread_area SYS_getcpu SYS_getcwd
        SYS_getdents SYS_getdents64 SYS_getegid SYS_geteuid SYS_getgid SYS_getgroups SYS_getitimer
        SYS_getpeername SYS_getpgid SYS_getpgrp SYS_getpid SYS_getppid SYS_getpriority
        SYS_getrandom SYS_getresgid SYS_getresuid SYS_getrlimit SYS_getrusage SYS_getsid
        SYS_getsockname SYS_getsockopt SYS_gettid SYS_gettimeofday SYS_getuid SYS_getxattr
        SYS_init_module SYS_inotify_add_watch SYS_inotify_init SYS_inotify_init1
        SYS_inotify_rm_watch SYS_io_cancel SYS_io_destroy SYS_io_getevents SYS_io_setup
        SYS_io_submit SYS_ioctl SYS_ioperm SYS_iopl SYS_ioprio_get SYS_ioprio_set SYS_kcmp SYS_kill
        SYS_landlock_add_rule SYS_landlock_create_ruleset SYS_landlock_restrict_self SYS_lchown
        SYS_lgetxattr SYS_link SYS_linkat SYS_listen SYS_listxattr SYS_llistxattr
        SYS_lookup_dcookie SYS_lremovexattr SYS_lseek SYS_lsetxattr SYS_lstat SYS_madvise SYS_mbind
        SYS_membarrier SYS_memfd_create SYS_memfd_secret SYS_mincore SYS_mkdir SYS_mkdirat
        SYS_mknod SYS_mknodat SYS_mlock SYS_mlock2 SYS_mlockall SYS_mmap SYS_modify_ldt SYS_mount
        SYS_mount_setattr SYS_move_mount SYS_mprotect SYS_mq_getsetattr SYS_mq_notify SYS_mq_open
        SYS_mq_timedreceive SYS_mq_timedsend SYS_mq_unlink SYS_mremap SYS_mseal SYS_msgctl
        SYS_msgget SYS_msgrcv SYS_msgsnd SYS_msync SYS_munlock SYS_munlockall SYS_munmap
        SYS_name_to_handle_at SYS_nanosleep SYS_newfstatat SYS_open SYS_open_by_handle_at
        SYS_open_tree SYS_openat SYS_openat2 SYS_pause SYS_perf_event_open SYS_personality
        SYS_pidfd_getfd SYS_pidfd_open SYS_pidfd_send_signal SYS_pipe SYS_pipe2 SYS_pkey_alloc
        SYS_pkey_free SYS_pkey_mprotect SYS_poll SYS_ppoll SYS_prctl SYS_pread64 SYS_preadv
        SYS_preadv2 SYS_prlimit64 SYS_process_madvise SYS_process_mrelease SYS_process_vm_readv
        SYS_process_vm_writev SYS_pselect6 SYS_ptrace SYS_pwrite64 SYS_pwritev SYS_pwritev2
        SYS_quotactl SYS_quotactl_fd SYS_read SYS_readahead SYS_readlink SYS_readlinkat SYS_readv
        SYS_reboot SYS_recvfrom SYS_recvmmsg SYS_recvmsg SYS_remap_file_pages SYS_removexattr
        SYS_rename SYS_renameat SYS_renameat2 SYS_restart_syscall SYS_rmdir SYS_rseq
        SYS_rt_sigaction SYS_rt_sigpending SYS_rt_sigprocmask SYS_rt_sigqueueinfo SYS_rt_sigreturn
        SYS_rt_sigsuspend SYS_rt_sigtimedwait SYS_rt_tgsigqueueinfo SYS_sched_get_priority_max
        SYS_sched_get_priority_min SYS_sched_getaffinity SYS_sched_getattr SYS_sched_getparam
        SYS_sched_getscheduler SYS_sched_rr_get_interval SYS_sched_setaffinity SYS_sched_setattr
        SYS_sched_setparam SYS_sched_setscheduler SYS_sched_yield SYS_seccomp SYS_select SYS_semctl
        SYS_semget SYS_semop SYS_semtimedop SYS_sendfile SYS_sendmmsg SYS_sendmsg SYS_sendto
        SYS_set_mempolicy SYS_set_mempolicy_home_node SYS_set_robust_list SYS_set_thread_area
        SYS_set_tid_address SYS_setdomainname SYS_setfsgid SYS_setfsuid SYS_setgid SYS_setgroups
        SYS_sethostname SYS_setitimer SYS_setns SYS_setpgid SYS_setpriority SYS_setregid
        SYS_setresgid SYS_setresuid SYS_setreuid SYS_setrlimit SYS_setsid SYS_setsockopt
        SYS_settimeofday SYS_setuid SYS_setxattr SYS_shmat SYS_shmctl SYS_shmdt SYS_shmget
        SYS_shutdown SYS_sigaltstack SYS_signalfd SYS_signalfd4 SYS_socket SYS_socketpair
        SYS_splice SYS_stat SYS_statfs SYS_statx SYS_symlink SYS_symlinkat SYS_sync
        SYS_sync_file_range SYS_syncfs SYS_sysinfo SYS_syslog SYS_tee SYS_tgkill SYS_time
        SYS_timer_create SYS_timer_delete SYS_timer_getoverrun SYS_timer_gettime SYS_timer_settime
        SYS_timerfd_create SYS_timerfd_gettime SYS_timerfd_settime SYS_times SYS_tkill SYS_truncate
        SYS_umask SYS_umount2 SYS_uname SYS_unlink SYS_unlinkat SYS_unshare SYS_utime SYS_utimensat
        SYS_utimes SYS_vfork SYS_vhangup SYS_vmsplice SYS_wait4 SYS_waitid SYS_write SYS_writev
        SYS_io_pgetevents = 333 SYS_uretprobe = 335 SYS_cachestat = 451
        SYS_map_shadow_stack = 453 SYS_futex_wake = 454 SYS_futex_wait = 455
        SYS_futex_requeue = 456 SYS_statmount = 457 SYS_listmount = 458
        SYS_lsm_get_self_attr = 459 SYS_lsm_set_self_attr = 460 SYS_lsm_list_modules = 461
        SYS_setxattrat = 463 SYS_getxattrat = 464 SYS_listxattrat = 465 SYS_removexattrat = 466
    };

    /// The profile's names that x86_64 does not have: other ABIs' calls and variants.
    #[cfg(test)]
    pub const ABSENT: &[&str] = names! {
        _llseek _newselect arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush chown32
        clock_adjtime64 clock_getres_time64 clock_gettime64 clock_nanosleep_time64 clock_settime64
        fadvise64_64 fchown32 fcntl64 fstat64 fstatat64 fstatfs64 ftruncate64 futex_time64
        getegid32 geteuid32 getgid32 getgroups32 getresgid32 getresuid32 getuid32
        io_pgetevents_time64 ipc lchown32 lstat64 mmap2 mq_timedreceive_time64 mq_timedsend_time64
        ppoll_time64 pselect6_time64 recv recvmmsg_time64 riscv_flush_icache riscv_hwprobe
        rt_sigtimedwait_time64 s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr
        sched_rr_get_interval_time64 semtimedop_time64 send sendfile64 set_tls setfsgid32
        setfsuid32 setgid32 setgroups32 setregid32 setresgid32 setresuid32 setreuid32 setuid32
        sigprocmask sigreturn socketcall stat64 statfs64 stime swapcontext sync_file_range2
        timer_gettime64 timer_settime64 timerfd_gettime64 timerfd_settime64 truncate64 ugetrlimit
        umount utimensat_time64 waitpid
    };
}

#[cfg(all(target_arch = "aarch64", target_pointer_width = "64"))]
mod arch {
    use seccompiler::TargetArch;

    pub const TARGET: Option<TargetArch> = Some(TargetArch::aarch64);
    /// Docker's name for the architecture, as in `includes.arches`.
    pub const DOCKER_ARCH: &str = "arm64";
    /// `AUDIT_ARCH_AARCH64`: `EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
    pub const AUDIT_ARCH: u32 = 0xC000_00B7;

    /// Every name of the profile that exists on aarch64. The explicit numbers come from
    /// `include/uapi/asm-generic/unistd.h`.
    pub const SYSCALLS: &[(&str, i64)] = numbers! {
        SYS_accept SYS_accept4 SYS_acct SYS_adjtimex SYS_bind SYS_bpf SYS_brk SYS_capget SYS_capset
        SYS_chdir SYS_chroot SYS_clock_adjtime SYS_clock_getres SYS_clock_gettime
        SYS_clock_nanosleep SYS_clock_settime SYS_clone SYS_clone3 SYS_close SYS_close_range
        SYS_connect SYS_copy_file_range SYS_delete_module SYS_dup SYS_dup3 SYS_epoll_create1
        SYS_epoll_ctl SYS_epoll_pwait SYS_epoll_pwait2 SYS_eventfd2 SYS_execve SYS_execveat
        SYS_exit SYS_exit_group SYS_faccessat SYS_faccessat2 SYS_fadvise64 SYS_fallocate
        SYS_fanotify_init SYS_fanotify_mark SYS_fchdir SYS_fchmod SYS_fchmodat SYS_fchown
        SYS_fchownat SYS_fcntl SYS_fdatasync SYS_fgetxattr SYS_finit_module SYS_flistxattr
        SYS_flock SYS_fremovexattr SYS_fsconfig SYS_fsetxattr SYS_fsmount SYS_fsopen SYS_fspick
        SYS_fstat SYS_fstatfs SYS_fsync SYS_ftruncate SYS_futex SYS_futex_waitv SYS_get_mempolicy
        SYS_get_robust_list SYS_getcpu SYS_getcwd SYS_getdents64 SYS_getegid SYS_geteuid SYS_getgid
        SYS_getgroups SYS_getitimer SYS_getpeername SYS_getpgid SYS_getpid SYS_getppid
        SYS_getpriority SYS_getrandom SYS_getresgid SYS_getresuid SYS_getrlimit SYS_getrusage
        SYS_getsid SYS_getsockname SYS_getsockopt SYS_gettid SYS_gettimeofday SYS_getuid
        SYS_getxattr SYS_init_module SYS_inotify_add_watch SYS_inotify_init1 SYS_inotify_rm_watch
        SYS_io_cancel SYS_io_destroy SYS_io_getevents SYS_io_setup SYS_io_submit SYS_ioctl
        SYS_ioprio_get SYS_ioprio_set SYS_kcmp SYS_kill SYS_landlock_add_rule
        SYS_landlock_create_ruleset SYS_landlock_restrict_self SYS_lgetxattr SYS_linkat SYS_listen
        SYS_listxattr SYS_llistxattr SYS_lookup_dcookie SYS_lremovexattr SYS_lseek SYS_lsetxattr
        SYS_madvise SYS_mbind SYS_membarrier SYS_memfd_create SYS_memfd_secret SYS_mincore
        SYS_mkdirat SYS_mknodat SYS_mlock SYS_mlock2 SYS_mlockall SYS_mmap SYS_mount
        SYS_mount_setattr SYS_move_mount SYS_mprotect SYS_mq_getsetattr SYS_mq_notify SYS_mq_open
        SYS_mq_timedreceive SYS_mq_timedsend SYS_mq_unlink SYS_mremap SYS_mseal SYS_msgctl
        SYS_msgget SYS_msgrcv SYS_msgsnd SYS_msync SYS_munlock SYS_munlockall SYS_munmap
        SYS_name_to_handle_at SYS_nanosleep SYS_newfstatat SYS_open_by_handle_at SYS_open_tree
        SYS_openat SYS_openat2 SYS_perf_event_open SYS_personality SYS_pidfd_getfd SYS_pidfd_open
        SYS_pidfd_send_signal SYS_pipe2 SYS_pkey_alloc SYS_pkey_free SYS_pkey_mprotect SYS_ppoll
        SYS_prctl SYS_pread64 SYS_preadv SYS_preadv2 SYS_prlimit64 SYS_process_madvise
        SYS_process_mrelease SYS_process_vm_readv SYS_process_vm_writev SYS_pselect6 SYS_ptrace
        SYS_pwrite64 SYS_pwritev SYS_pwritev2 SYS_quotactl SYS_quotactl_fd SYS_read SYS_readahead
        SYS_readlinkat SYS_readv SYS_reboot SYS_recvfrom SYS_recvmmsg SYS_recvmsg
        SYS_remap_file_pages SYS_removexattr SYS_renameat SYS_renameat2 SYS_restart_syscall
        SYS_rseq SYS_rt_sigaction SYS_rt_sigpending SYS_rt_sigprocmask SYS_rt_sigqueueinfo
        SYS_rt_sigreturn SYS_rt_sigsuspend SYS_rt_sigtimedwait SYS_rt_tgsigqueueinfo
        SYS_sched_get_priority_max SYS_sched_get_priority_min SYS_sched_getaffinity
        SYS_sched_getattr SYS_sched_getparam SYS_sched_getscheduler SYS_sched_rr_get_interval
        SYS_sched_setaffinity SYS_sched_setattr SYS_sched_setparam SYS_sched_setscheduler
        SYS_sched_yield SYS_seccomp SYS_semctl SYS_semget SYS_semop SYS_semtimedop SYS_sendfile
        SYS_sendmmsg SYS_sendmsg SYS_sendto SYS_set_mempolicy SYS_set_mempolicy_home_node
        SYS_set_robust_list SYS_set_tid_address SYS_setdomainname SYS_setfsgid SYS_setfsuid
        SYS_setgid SYS_setgroups SYS_sethostname SYS_setitimer SYS_setns SYS_setpgid
        SYS_setpriority SYS_setregid SYS_setresgid SYS_setresuid SYS_setreuid SYS_setrlimit
        SYS_setsid SYS_setsockopt SYS_settimeofday SYS_setuid SYS_setxattr SYS_shmat SYS_shmctl
        SYS_shmdt SYS_shmget SYS_shutdown SYS_sigaltstack SYS_signalfd4 SYS_socket SYS_socketpair
        SYS_splice SYS_statfs SYS_statx SYS_symlinkat SYS_sync SYS_sync_file_range SYS_syncfs
        SYS_sysinfo SYS_syslog SYS_tee SYS_tgkill SYS_timer_create SYS_timer_delete
        SYS_timer_getoverrun SYS_timer_gettime SYS_timer_settime SYS_timerfd_create
        SYS_timerfd_gettime SYS_timerfd_settime SYS_times SYS_tkill SYS_truncate SYS_umask
        SYS_umount2 SYS_uname SYS_unlinkat SYS_unshare SYS_utimensat SYS_vhangup SYS_vmsplice
        SYS_wait4 SYS_waitid SYS_write SYS_writev
        SYS_io_pgetevents = 292 SYS_cachestat = 451 SYS_fchmodat2 = 452
        SYS_map_shadow_stack = 453 SYS_futex_wake = 454 SYS_futex_wait = 455
        SYS_futex_requeue = 456 SYS_statmount = 457 SYS_listmount = 458
        SYS_lsm_get_self_attr = 459 SYS_lsm_set_self_attr = 460 SYS_lsm_list_modules = 461
        SYS_setxattrat = 463 SYS_getxattrat = 464 SYS_listxattrat = 465 SYS_removexattrat = 466
    };

    /// The profile's names that aarch64 does not have: legacy calls the generic table
    /// dropped, other ABIs' calls and variants.
    #[cfg(test)]
    pub const ABSENT: &[&str] = names! {
        _llseek _newselect access alarm arch_prctl arm_fadvise64_64 arm_sync_file_range breakpoint
        cacheflush chmod chown chown32 clock_adjtime64 clock_getres_time64 clock_gettime64
        clock_nanosleep_time64 clock_settime64 creat dup2 epoll_create epoll_ctl_old epoll_wait
        epoll_wait_old eventfd fadvise64_64 fchown32 fcntl64 fork fstat64 fstatat64 fstatfs64
        ftruncate64 futex_time64 futimesat get_thread_area getdents getegid32 geteuid32 getgid32
        getgroups32 getpgrp getresgid32 getresuid32 getuid32 inotify_init io_pgetevents_time64
        ioperm iopl ipc lchown lchown32 link lstat lstat64 mkdir mknod mmap2 modify_ldt
        mq_timedreceive_time64 mq_timedsend_time64 open pause pipe poll ppoll_time64
        pselect6_time64 readlink recv recvmmsg_time64 rename riscv_flush_icache riscv_hwprobe rmdir
        rt_sigtimedwait_time64 s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr
        sched_rr_get_interval_time64 select semtimedop_time64 send sendfile64 set_thread_area
        set_tls setfsgid32 setfsuid32 setgid32 setgroups32 setregid32 setresgid32 setresuid32
        setreuid32 setuid32 signalfd sigprocmask sigreturn socketcall stat stat64 statfs64 stime
        swapcontext symlink sync_file_range2 time timer_gettime64 timer_settime64 timerfd_gettime64
        timerfd_settime64 truncate64 ugetrlimit umount unlink uretprobe utime utimensat_time64
        utimes vfork waitpid
    };
}

#[cfg(not(any(
    all(target_arch = "x86_64", target_pointer_width = "64"),
    all(target_arch = "aarch64", target_pointer_width = "64"),
)))]
mod arch {
    use seccompiler::TargetArch;

    pub const TARGET: Option<TargetArch> = None;
    pub const DOCKER_ARCH: &str = "";
    pub const AUDIT_ARCH: u32 = 0;
    pub const SYSCALLS: &[(&str, i64)] = &[];
    #[cfg(test)]
    pub const ABSENT: &[&str] = &[];
}

/// The number of `name` on this architecture, if it has the call.
fn number(name: &str) -> Option<i64> {
    arch::SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, nr)| nr)
}

/// The number of a call the argument rules need.
fn required(name: &'static str) -> Result<i64, SeccompError> {
    number(name).ok_or(SeccompError::MissingSyscall { name })
}

// ---------------------------------------------------------------------------------------
// Building and loading
// ---------------------------------------------------------------------------------------

/// seccompiler's rules: syscall number → rules, any of which allows the call; an empty list
/// allows it whatever the arguments.
type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Compiles Docker's default profile for a container holding `caps` (its bounding,
/// effective and permitted set, [`super::spec::Security::capabilities`]) into a BPF program
/// for this architecture: calls outside the profile fail with `EPERM`, `clone3` fails with
/// `ENOSYS` unless `caps` has `CAP_SYS_ADMIN` (so that libc falls back to `clone`, whose
/// flags the filter can see), and calls from any other ABI kill the process.
///
/// The program still allows everything a container's init does after loading it: `capset`,
/// `setgroups`, `setresgid`/`setresuid`, `prctl`, `close_range`, `write`, `execve` and
/// `exit_group`. It does not allow `sethostname`, `mount`, `pivot_root`, `setns`, `unshare`
/// or `keyctl` without the matching capability, so the init does those first.
pub fn default_filter(caps: &[Capability]) -> Result<BpfProgram, SeccompError> {
    let target = arch::TARGET.ok_or(SeccompError::UnsupportedArch {
        arch: std::env::consts::ARCH,
    })?;
    let sys_admin = caps.contains(&Capability::SysAdmin);
    let filter = SeccompFilter::new(
        rules(caps)?,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        target,
    )
    .map_err(|source| SeccompError::Compile { source })?;
    let compiled =
        BpfProgram::try_from(filter).map_err(|source| SeccompError::Compile { source })?;
    let mut program = if sys_admin {
        Vec::new()
    } else {
        clone3_prefix(required("clone3")?)
    };
    program.extend(compiled);
    let max = libc::BPF_MAXINSNS as usize;
    if program.len() > max {
        return Err(SeccompError::TooLong {
            len: program.len(),
            max,
        });
    }
    Ok(program)
}

/// Installs `prog` on the calling thread only; threads that already exist keep their
/// filters, and children created afterwards inherit it. The caller is a container's
/// single-threaded init just before `execve`.
///
/// Like Docker, this leaves `no_new_privs` alone (the raw `seccomp(2)` call in
/// `runtime::sys`, not seccompiler's `apply_filter`, which always sets it): the caller must
/// either still hold `CAP_SYS_ADMIN` or have set `no_new_privs` itself, as
/// `runtime::process` does.
pub fn load(prog: &BpfProgram) -> Result<(), SeccompError> {
    super::sys::seccomp_set_filter(prog).map_err(|source| SeccompError::Load { source })
}

/// The rules of the profile for `caps` on this architecture.
fn rules(caps: &[Capability]) -> Result<Rules, SeccompError> {
    let mut rules = Rules::new();
    allow_all(&mut rules, ALLOWED);
    allow_all(&mut rules, ALLOWED_SINCE_4_8);
    for (arches, names) in BY_ARCH {
        if arches.contains(&arch::DOCKER_ARCH) {
            allow_all(&mut rules, names);
        }
    }
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(cap) {
            allow_all(&mut rules, names);
        }
    }

    let socket = required("socket")?;
    for rule in socket_rules()? {
        allow_when(&mut rules, socket, rule);
    }
    let personality = required("personality")?;
    for &persona in PERSONALITIES {
        allow_when(&mut rules, personality, arg0(SeccompCmpOp::Eq, persona)?);
    }
    if !caps.contains(&Capability::SysAdmin) {
        let rule = arg0(SeccompCmpOp::MaskedEq(CLONE_NAMESPACE_FLAGS), 0)?;
        allow_when(&mut rules, required("clone")?, rule);
    }
    Ok(rules)
}

/// Allows each of `names` that this architecture has, whatever the arguments.
fn allow_all(rules: &mut Rules, names: &[&str]) {
    for nr in names.iter().filter_map(|name| number(name)) {
        rules.insert(nr, Vec::new());
    }
}

/// Allows `nr` when `rule` matches, unless it is already allowed outright.
fn allow_when(rules: &mut Rules, nr: i64, rule: SeccompRule) {
    match rules.entry(nr) {
        Entry::Vacant(entry) => {
            entry.insert(vec![rule]);
        }
        Entry::Occupied(mut entry) if !entry.get().is_empty() => entry.get_mut().push(rule),
        Entry::Occupied(_) => {}
    }
}

/// A rule on the first argument, compared as 64 bits as libseccomp does on 64-bit ABIs.
fn arg0(op: SeccompCmpOp, value: u64) -> Result<SeccompRule, SeccompError> {
    SeccompCondition::new(0, SeccompCmpArgLen::Qword, op, value)
        .and_then(|condition| SeccompRule::new(vec![condition]))
        .map_err(|source| SeccompError::Compile { source })
}

/// [`SOCKET_DOMAINS`] as rules, as upstream's `socketSyscallsForDomains` builds them: the
/// run of consecutive families from `AF_UNIX` is one `domain < end` rule (`AF_UNSPEC` is
/// not creatable, so including 0 costs nothing), every later family its own `==` rule.
fn socket_rules() -> Result<Vec<SeccompRule>, SeccompError> {
    let mut domains: Vec<u64> = SOCKET_DOMAINS.iter().map(|&(_, domain)| domain).collect();
    domains.sort_unstable();
    let run = domains
        .iter()
        .zip(1u64..)
        .take_while(|&(&domain, expected)| domain == expected)
        .count();
    let mut rules = Vec::new();
    let rest = if run >= 2 {
        rules.push(arg0(SeccompCmpOp::Lt, domains[run - 1] + 1)?);
        &domains[run..]
    } else {
        &domains[..]
    };
    for &domain in rest {
        rules.push(arg0(SeccompCmpOp::Eq, domain)?);
    }
    Ok(rules)
}

/// `offsetof(struct seccomp_data, nr)` and `offsetof(struct seccomp_data, arch)`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

/// Docker's `clone3` rule (`SCMP_ACT_ERRNO`, `errnoRet: 38`, excluded with
/// `CAP_SYS_ADMIN`). seccompiler compiles a filter with a single match action, so this rule
/// is five instructions placed before the compiled program: native `clone3` returns
/// `ENOSYS`, anything else falls through to the program's first instruction. BPF jumps are
/// relative and only go forward, so prepending leaves the compiled program intact.
fn clone3_prefix(clone3: i64) -> Vec<sock_filter> {
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load_word = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    vec![
        stmt(load_word, SECCOMP_DATA_ARCH),
        jeq(arch::AUDIT_ARCH, 0, 3), // another ABI: on to the compiled program
        stmt(load_word, SECCOMP_DATA_NR),
        jeq(clone3 as u32, 0, 1),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spec::DEFAULT_CAPABILITIES;

    fn with(extra: Capability) -> Vec<Capability> {
        let mut caps = DEFAULT_CAPABILITIES.to_vec();
        caps.push(extra);
        caps
    }

    /// Every name the profile mentions, including those of the argument rules.
    fn profile_names() -> Vec<&'static str> {
        let mut names: Vec<&str> = ALLOWED.iter().chain(ALLOWED_SINCE_4_8).copied().collect();
        names.extend(BY_ARCH.iter().flat_map(|(_, n)| n.iter().copied()));
        names.extend(BY_CAPABILITY.iter().flat_map(|(_, n)| n.iter().copied()));
        names.extend(["socket", "personality", "clone", "clone3"]);
        names
    }

    #[test]
    fn every_profile_name_is_numbered_or_known_absent() {
        let names = profile_names();
        for name in &names {
            let numbered = number(name).is_some();
            let absent = arch::ABSENT.contains(name);
            assert!(
                numbered != absent,
                "{name}: numbered {numbered}, absent {absent}"
            );
        }
        for (name, nr) in arch::SYSCALLS {
            assert!(
                names.contains(name),
                "{name} is numbered but not in the profile"
            );
            let same_nr = arch::SYSCALLS.iter().filter(|(_, n)| n == nr).count();
            assert_eq!(same_nr, 1, "{name}: number {nr} appears {same_nr} times");
        }
        assert!(arch::SYSCALLS.len() > 280, "{}", arch::SYSCALLS.len());
    }

    /// The numbers `libc` does not have sit where the kernel's table puts them, between
    /// neighbours it does have.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn explicit_numbers_fit_between_libc_neighbours() {
        let nr = |name| number(name).unwrap();
        assert_eq!(nr("io_pgetevents"), libc::SYS_rseq - 1);
        assert_eq!(nr("uretprobe"), libc::SYS_rseq + 1);
        assert_eq!(nr("cachestat"), libc::SYS_set_mempolicy_home_node + 1);
        assert_eq!(nr("cachestat"), libc::SYS_fchmodat2 - 1);
        assert_eq!(nr("map_shadow_stack"), libc::SYS_fchmodat2 + 1);
        assert_eq!(nr("lsm_list_modules"), libc::SYS_mseal - 1);
        assert_eq!(nr("setxattrat"), libc::SYS_mseal + 1);
        let explicit: Vec<i64> = [
            "map_shadow_stack",
            "futex_wake",
            "futex_wait",
            "futex_requeue",
            "statmount",
            "listmount",
            "lsm_get_self_attr",
            "lsm_set_self_attr",
            "lsm_list_modules",
        ]
        .into_iter()
        .map(nr)
        .collect();
        assert_eq!(explicit, (453..=461).collect::<Vec<_>>());
    }

    fn unconditional(rules: &Rules, name: &str) -> bool {
        let nr = number(name).unwrap_or_else(|| panic!("{name} has no number"));
        rules.get(&nr).is_some_and(Vec::is_empty)
    }

    #[test]
    fn default_capabilities_rules() {
        let rules = rules(&DEFAULT_CAPABILITIES).unwrap();
        // What a container's init still does after loading the filter, and its program.
        for name in [
            "capset",
            "capget",
            "setgroups",
            "setgid",
            "setuid",
            "setresgid",
            "setresuid",
            "prctl",
            "close",
            "close_range",
            "dup3",
            "chdir",
            "write",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "read",
            "mmap",
            "rt_sigreturn",
            "futex",
            "ptrace",
            "chroot", // CAP_SYS_CHROOT is in Docker's default set
        ] {
            assert!(unconditional(&rules, name), "{name}");
        }
        #[cfg(target_arch = "x86_64")]
        assert!(unconditional(&rules, "arch_prctl"));
        // Refused: the capability-gated groups Docker's set does not unlock, and the calls
        // Docker never allows.
        for nr in [
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_sethostname,
            libc::SYS_clone3,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_open_by_handle_at,
            libc::SYS_reboot,
            libc::SYS_init_module,
            libc::SYS_acct,
            libc::SYS_kcmp,
            libc::SYS_settimeofday,
            libc::SYS_vhangup,
            libc::SYS_mbind,
            libc::SYS_syslog,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_kexec_load,
            libc::SYS_userfaultfd,
            libc::SYS_io_uring_setup,
        ] {
            assert!(!rules.contains_key(&nr), "syscall {nr} is allowed");
        }
        #[cfg(target_arch = "x86_64")]
        assert!(!rules.contains_key(&libc::SYS_iopl));
        let conditional = |name| rules[&number(name).unwrap()].len();
        assert_eq!(conditional("clone"), 1);
        assert_eq!(conditional("personality"), PERSONALITIES.len());
        // AF_UNIX..=AF_ROSE as one range, then one rule per later family.
        assert_eq!(conditional("socket"), 1 + SOCKET_DOMAINS.len() - 11);
    }

    #[test]
    fn capabilities_unlock_their_groups() {
        let all = rules(Capability::ALL).unwrap();
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "clone",
            "clone3",
            "sethostname",
            "bpf",
            "reboot",
            "kcmp",
            "acct",
            "vhangup",
            "mbind",
            "syslog",
        ] {
            assert!(unconditional(&all, name), "{name}");
        }
        for nr in [
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_pivot_root,
            libc::SYS_kexec_load,
        ] {
            assert!(!all.contains_key(&nr), "syscall {nr} is allowed");
        }
        assert_eq!(
            all[&number("personality").unwrap()].len(),
            PERSONALITIES.len()
        );

        // One capability at a time.
        let ptrace = rules(&with(Capability::SysPtrace)).unwrap();
        assert!(unconditional(&ptrace, "kcmp") && unconditional(&ptrace, "pidfd_getfd"));
        let bpf = rules(&with(Capability::Bpf)).unwrap();
        assert!(unconditional(&bpf, "bpf") && !unconditional(&bpf, "unshare"));
        let admin = rules(&with(Capability::SysAdmin)).unwrap();
        assert!(unconditional(&admin, "clone") && unconditional(&admin, "clone3"));
    }

    #[test]
    fn socket_rules_follow_upstream() {
        let domains: Vec<u64> = SOCKET_DOMAINS.iter().map(|&(_, d)| d).collect();
        assert!(domains.is_sorted());
        assert_eq!(domains.first(), Some(&1));
        assert_eq!(domains.last(), Some(&45));
        for refused in [12, 19, 20, 23, 25, 34, 37, 38, 40] {
            assert!(!domains.contains(&refused), "{refused}");
        }
        // `< 12` for AF_UNIX..=AF_ROSE, then one `==` per family.
        assert_eq!(socket_rules().unwrap().len(), 1 + domains.len() - 11);
    }

    #[test]
    fn programs_compile_within_the_kernel_limit() {
        let default = default_filter(&DEFAULT_CAPABILITIES).unwrap();
        let full = default_filter(Capability::ALL).unwrap();
        eprintln!(
            "BPF instructions: default caps {}, all caps {}",
            default.len(),
            full.len()
        );
        for program in [&default, &full] {
            assert!((1000..=4096).contains(&program.len()), "{}", program.len());
        }
        // Without CAP_SYS_ADMIN, the clone3 → ENOSYS prefix comes first, and it checks the
        // same audit architecture as seccompiler's own check right after it.
        assert_eq!(default[3].k, libc::SYS_clone3 as u32);
        assert_eq!(default[4].k, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(default[1].k, arch::AUDIT_ARCH);
        assert_eq!(default[5 + 1].k, arch::AUDIT_ARCH);
        assert_eq!(full[1].k, arch::AUDIT_ARCH);
        assert_ne!(full[3].k, libc::SYS_clone3 as u32);
    }

    /// The filter for real, on threads of this test process: each sets `no_new_privs` first
    /// (as a container with `no-new-privileges` does), so this works unprivileged, and a filter and a namespace unshared by a thread stay on
    /// that thread and end with it.
    #[allow(unsafe_code)]
    mod behaviour {
        use std::ffi::c_long;
        use std::io;

        use super::super::*;
        use super::with;
        use crate::runtime::spec::DEFAULT_CAPABILITIES;

        fn is_root() -> bool {
            nix::unistd::geteuid().is_root()
        }

        /// `Ok(return value)`, or `Err(errno)` for -1.
        fn check(ret: c_long) -> Result<c_long, i32> {
            if ret == -1 {
                Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
            } else {
                Ok(ret)
            }
        }

        /// Runs `f` on a new thread that has loaded the default profile for `caps`.
        fn filtered<T: Send + 'static>(
            caps: &[Capability],
            f: impl FnOnce() -> T + Send + 'static,
        ) -> T {
            let program = default_filter(caps).unwrap();
            std::thread::spawn(move || {
                nix::sys::prctl::set_no_new_privs().unwrap();
                load(&program).unwrap();
                f()
            })
            .join()
            .expect("the filtered thread panicked")
        }

        fn getpid() -> Result<c_long, i32> {
            // SAFETY: getpid takes no arguments and cannot fail.
            check(unsafe { libc::syscall(libc::SYS_getpid) })
        }

        fn no_new_privs() -> Result<c_long, i32> {
            // SAFETY: PR_GET_NO_NEW_PRIVS reads a flag; the unused arguments must be 0.
            check(unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) }.into())
        }

        fn unshare(flags: i32) -> Result<c_long, i32> {
            // SAFETY: unshare takes flags only. It runs on a test thread that ends right
            // after, so a namespace it creates affects nothing else.
            check(unsafe { libc::unshare(flags) }.into())
        }

        fn mount_tmpfs_on_missing_dir() -> Result<c_long, i32> {
            // SAFETY: every pointer is a NUL-terminated literal or null (no data). The target
            // does not exist, so without the filter the kernel fails with ENOENT and
            // nothing is mounted even as root.
            check(
                unsafe {
                    libc::mount(
                        c"none".as_ptr(),
                        c"/nonexistent/wharf-seccomp-test".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                }
                .into(),
            )
        }

        fn keyctl_session_keyring_id() -> Result<c_long, i32> {
            // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), create = 0: a read.
            // SAFETY: integer arguments only.
            check(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) })
        }

        fn clone3_without_args() -> Result<c_long, i32> {
            // SAFETY: with a size of 0 the kernel rejects the call (EINVAL) before reading
            // the null pointer, so no process is ever created.
            check(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) })
        }

        fn personality(persona: u64) -> Result<c_long, i32> {
            // SAFETY: personality takes an integer; it changes only this thread's persona,
            // and the test threads that change it end right after.
            check(unsafe { libc::personality(persona) }.into())
        }

        /// Opens and closes a socket.
        fn socket(domain: i32, kind: i32, protocol: i32) -> Result<c_long, i32> {
            // SAFETY: integer arguments only.
            let fd = check(unsafe { libc::socket(domain, kind, protocol) }.into())?;
            // SAFETY: fd was just returned by socket() and is owned by nothing else.
            unsafe { libc::close(fd as i32) };
            Ok(0)
        }

        #[test]
        fn controls_without_a_filter() {
            // The calls below are refused because of the filter, not because of this host.
            if is_root() {
                assert_eq!(mount_tmpfs_on_missing_dir(), Err(libc::ENOENT));
            }
            assert_eq!(clone3_without_args(), Err(libc::EINVAL));
            assert_ne!(keyctl_session_keyring_id(), Err(libc::EPERM));
            assert_ne!(
                socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0),
                Err(libc::EPERM)
            );
            assert_ne!(
                socket(libc::AF_ALG, libc::SOCK_SEQPACKET, 0),
                Err(libc::EPERM)
            );
        }

        #[test]
        fn default_capabilities() {
            let pid = getpid().unwrap();
            let results = filtered(&DEFAULT_CAPABILITIES, || {
                [
                    ("getpid", getpid()),
                    ("no_new_privs", no_new_privs()),
                    ("unshare(CLONE_NEWNS)", unshare(libc::CLONE_NEWNS)),
                    ("unshare(CLONE_NEWUTS)", unshare(libc::CLONE_NEWUTS)),
                    ("mount", mount_tmpfs_on_missing_dir()),
                    ("keyctl", keyctl_session_keyring_id()),
                    ("clone3", clone3_without_args()),
                    ("personality(query)", personality(0xffff_ffff)),
                    ("personality(PER_LINUX)", personality(0)),
                    (
                        "personality(ADDR_NO_RANDOMIZE)",
                        personality(libc::ADDR_NO_RANDOMIZE as u64),
                    ),
                    (
                        "socket(AF_INET)",
                        socket(libc::AF_INET, libc::SOCK_STREAM, 0),
                    ),
                    (
                        "socket(AF_UNIX)",
                        socket(libc::AF_UNIX, libc::SOCK_STREAM, 0),
                    ),
                    (
                        "socket(AF_NETLINK)",
                        socket(libc::AF_NETLINK, libc::SOCK_RAW, 0),
                    ),
                    (
                        "socket(AF_VSOCK)",
                        socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0),
                    ),
                    (
                        "socket(AF_ALG)",
                        socket(libc::AF_ALG, libc::SOCK_SEQPACKET, 0),
                    ),
                    ("socket(46)", socket(46, libc::SOCK_STREAM, 0)),
                    (
                        "socket(AF_INET, SOCK_RAW)",
                        socket(libc::AF_INET, libc::SOCK_RAW, 1),
                    ),
                ]
            });
            let result = |name: &str| results.iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(result("getpid"), Ok(pid));
            assert_eq!(result("no_new_privs"), Ok(1));
            for refused in [
                "unshare(CLONE_NEWNS)",
                "unshare(CLONE_NEWUTS)",
                "mount",
                "keyctl",
                "personality(ADDR_NO_RANDOMIZE)",
                "socket(AF_VSOCK)",
                "socket(AF_ALG)",
                "socket(46)",
            ] {
                assert_eq!(result(refused), Err(libc::EPERM), "{refused}");
            }
            assert_eq!(result("clone3"), Err(libc::ENOSYS));
            assert_eq!(result("personality(PER_LINUX)"), Ok(0));
            assert!(result("personality(query)").is_ok());
            for allowed in ["socket(AF_INET)", "socket(AF_UNIX)", "socket(AF_NETLINK)"] {
                assert_eq!(result(allowed), Ok(0), "{allowed}");
            }
            let raw = result("socket(AF_INET, SOCK_RAW)");
            if is_root() {
                assert_eq!(raw, Ok(0), "raw sockets need CAP_NET_RAW, in Docker's set");
            } else {
                eprintln!("SKIPPED: socket(AF_INET, SOCK_RAW) as non-root gave {raw:?}");
                assert_ne!(raw, Err(libc::EPERM));
            }
        }

        /// libc falls back from `clone3` to `clone` for threads and processes, and a program
        /// runs from `execve` to `exit_group` under the profile.
        #[test]
        fn threads_and_programs_run_under_the_default_profile() {
            let (thread, status) = filtered(&DEFAULT_CAPABILITIES, || {
                let thread = std::thread::spawn(|| getpid().is_ok()).join();
                let status = std::process::Command::new("/bin/sh")
                    .args(["-c", "exec /bin/true"])
                    .status()
                    .map(|s| s.success());
                (thread.ok(), status.map_err(|e| e.to_string()))
            });
            assert_eq!(thread, Some(true));
            assert_eq!(status, Ok(true));
        }

        #[test]
        fn cap_sys_admin_allows_unshare() {
            let (uts, clone3, mount) = filtered(&with(Capability::SysAdmin), || {
                (
                    unshare(libc::CLONE_NEWUTS),
                    clone3_without_args(),
                    mount_tmpfs_on_missing_dir(),
                )
            });
            // clone3 now reaches the kernel, which rejects the empty arguments.
            assert_eq!(clone3, Err(libc::EINVAL));
            if is_root() {
                assert_eq!(uts, Ok(0));
                assert_eq!(mount, Err(libc::ENOENT));
            } else {
                eprintln!("SKIPPED: unshare(CLONE_NEWUTS) needs root; got {uts:?}");
            }
        }

        #[test]
        fn loading_as_root_leaves_no_new_privs_alone() {
            if !is_root() {
                eprintln!("SKIPPED loading_as_root_leaves_no_new_privs_alone: needs root");
                return;
            }
            let program = default_filter(&DEFAULT_CAPABILITIES).unwrap();
            let (nnp, unshared) = std::thread::spawn(move || {
                load(&program).unwrap();
                (no_new_privs(), unshare(libc::CLONE_NEWNS))
            })
            .join()
            .unwrap();
            assert_eq!(
                nnp,
                Ok(0),
                "Docker's behaviour: no_new_privs only when asked"
            );
            assert_eq!(unshared, Err(libc::EPERM), "and the filter is in force");
        }
    }
}
