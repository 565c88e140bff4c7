//! Scheduler hints (prototype).

/// Asks the kernel for short time slices for the calling thread.
#[allow(unsafe_code)]
pub fn short_slices(ns: u64) -> bool {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr { size: 48, policy: 0, flags: 0, nice: 0, priority: 0, runtime: ns, deadline: 0, period: 0 };
    // SAFETY: prototype
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    r == 0
}
