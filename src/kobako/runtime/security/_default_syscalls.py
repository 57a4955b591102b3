"""Data behind kobako's default seccomp profile (assembled by :mod:`.default_seccomp`).

The allow list is grouped by what the calls do, so a review can ask "why may a container do
this?" group by group. It follows the defaults of Docker and Podman (an allow list over an EPERM
default), and like their current versions it leaves out ``io_uring_*``: io_uring submissions are
invisible to seccomp and have been a steady source of kernel escapes. 32-bit and ``*_time64``
variants are listed because the filter also covers the compat architectures (x86, x32, arm).
Names libseccomp does not know are skipped when the filter is built, so listing calls of newer
kernels is harmless.

Each group is one whitespace-separated string (read with ``str.split``).
"""

from __future__ import annotations

ALLOWED: dict[str, str] = {
    "process lifecycle and introspection": """
        exit exit_group fork vfork execve execveat wait4 waitid waitpid getpid getppid gettid getpgid
        getpgrp getsid setpgid setsid kill tkill tgkill pidfd_open pidfd_send_signal process_mrelease
        set_tid_address set_robust_list get_robust_list rseq membarrier restart_syscall prctl seccomp
        capget capset landlock_create_ruleset landlock_add_rule landlock_restrict_self getrusage
        getrlimit setrlimit prlimit64 ugetrlimit uname sysinfo times getcpu umask chdir fchdir getcwd
    """,
    "signals": """
        rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
        rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack signalfd signalfd4
        sigprocmask sigreturn pause alarm
    """,
    "credentials (the kernel still checks CAP_SETUID/CAP_SETGID)": """
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32
        getresgid getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid setreuid32
        setregid setregid32 setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid
        setfsgid32 setgroups setgroups32
    """,
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore msync mlock mlock2 mlockall munlock
        munlockall remap_file_pages memfd_create memfd_secret pkey_alloc pkey_free pkey_mprotect
        map_shadow_stack mseal
    """,
    "threads and futexes": """
        futex futex_time64 futex_waitv futex_wake futex_wait futex_requeue get_thread_area
        set_thread_area
    """,
    "scheduling and priorities (the kernel checks CAP_SYS_NICE for raising them)": """
        sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam sched_setparam
        sched_getscheduler sched_setscheduler sched_get_priority_max sched_get_priority_min
        sched_rr_get_interval sched_rr_get_interval_time64 sched_yield getpriority setpriority
        ioprio_get ioprio_set
    """,
    "time and timers (adjtimex only reads without CAP_SYS_TIME)": """
        adjtimex clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
        clock_gettime64 clock_nanosleep clock_nanosleep_time64 nanosleep gettimeofday time getitimer
        setitimer timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
        timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
        timerfd_settime64
    """,
    "file descriptors and file data": """
        open openat openat2 creat close close_range dup dup2 dup3 read readv pread64 preadv preadv2
        write writev pwrite64 pwritev pwritev2 lseek _llseek sendfile sendfile64 splice tee vmsplice
        copy_file_range readahead fadvise64 fadvise64_64 fallocate ftruncate ftruncate64 truncate
        truncate64 fsync fdatasync sync syncfs sync_file_range fcntl fcntl64 flock ioctl cachestat
    """,
    "file names and metadata": """
        access faccessat faccessat2 stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64 chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32
        fchownat lchown lchown32 mkdir mkdirat mknod mknodat rmdir link linkat symlink symlinkat unlink
        unlinkat rename renameat renameat2 readlink readlinkat getdents getdents64 utime utimes
        utimensat utimensat_time64 futimesat name_to_handle_at
    """,
    "extended attributes": """
        getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat listxattr
        llistxattr flistxattr listxattrat removexattr lremovexattr fremovexattr removexattrat
    """,
    "waiting for events": """
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait
        epoll_pwait2 eventfd eventfd2 poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark pipe pipe2
    """,
    "asynchronous I/O (io_uring deliberately absent)": """
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
    """,
    "System V IPC and POSIX message queues": """
        ipc msgctl msgget msgrcv msgsnd semctl semget semop semtimedop semtimedop_time64 shmat shmctl
        shmdt shmget mq_open mq_unlink mq_getsetattr mq_notify mq_timedreceive mq_timedreceive_time64
        mq_timedsend mq_timedsend_time64
    """,
    "sockets (socket itself is a rule of its own: no AF_VSOCK)": """
        accept accept4 bind connect listen getpeername getsockname getsockopt setsockopt recv recvfrom
        recvmsg recvmmsg recvmmsg_time64 send sendto sendmsg sendmmsg shutdown socketpair socketcall
    """,
    "randomness": "getrandom",
}

# Before Linux 4.8 a tracer could rewrite a syscall after seccomp had checked it, so ptrace was a
# way around the filter; since then these are safe for everyone (the kernel checks permissions).
PTRACE_SINCE_4_8 = "ptrace process_vm_readv process_vm_writev"

# Calls that only make sense with a capability the kernel checks anyway; the filter keeps the
# kernel surface small for containers that were not granted it.
BY_CAPABILITY: dict[str, str] = {
    "CAP_SYS_ADMIN": """
        mount umount umount2 mount_setattr move_mount open_tree fsopen fsconfig fsmount fspick statmount
        listmount unshare setns clone clone3 sethostname setdomainname quotactl quotactl_fd
        lookup_dcookie fanotify_init bpf perf_event_open syslog
    """,
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "init_module finit_module delete_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd process_madvise",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy set_mempolicy set_mempolicy_home_node mbind",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26 alone and with
# PER_LINUX32, and 0xffffffff, which only queries the current persona.
PERSONALITIES: tuple[int, ...] = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
# CLONE_NEWNET: without CAP_SYS_ADMIN, clone() is allowed only with none of these set.
CLONE_NAMESPACE_FLAGS = 0x7E020000
ENOSYS = 38  # what clone3 returns without CAP_SYS_ADMIN, so libcs fall back to clone()
EPERM = 1
AF_VSOCK = 40  # host <-> guest sockets stay out of containers


class Machine:
    """What the default profile needs to know about one host architecture (``uname -m``)."""

    def __init__(self, architectures: str, syscalls: str, clone_flags_arg: int = 0) -> None:
        self.architectures = architectures.split()  # native first, then the compat ABIs it runs
        self.syscalls = syscalls.split()  # architecture-specific calls to allow
        self.clone_flags_arg = clone_flags_arg  # s390 passes clone's flags second


MACHINES: dict[str, Machine] = {
    "x86_64": Machine("SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32", "arch_prctl modify_ldt"),
    "aarch64": Machine(
        "SCMP_ARCH_AARCH64 SCMP_ARCH_ARM",
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    ),
    "ppc64le": Machine("SCMP_ARCH_PPC64LE", "sync_file_range2 swapcontext"),
    "s390x": Machine(
        "SCMP_ARCH_S390X SCMP_ARCH_S390", "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", 1
    ),
    "riscv64": Machine("SCMP_ARCH_RISCV64", "riscv_flush_icache"),
}
