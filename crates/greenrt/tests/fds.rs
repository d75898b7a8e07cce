//! Descriptors a finished hub gives back: in a binary of its own, so that
//! no other test opens or closes descriptors while these are counted.

#![cfg(target_os = "linux")]

use greenrt::Runtime;

/// Descriptors this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[cfg_attr(
    miri,
    ignore = "counts descriptors in /proc, and miri's hubs have no reactor"
)]
#[test]
fn a_finished_hub_gives_its_descriptors_back_while_its_handles_live() {
    // Once, so that whatever the first runtime sets up for good is there.
    drop(Runtime::builder().workers(1).build().unwrap());
    let before = open_fds();
    let (mut handles, mut greenlets) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let rt = Runtime::builder().workers(4).build().unwrap();
        let g = rt.spawn(async { 1 });
        assert!(g.join_timeout_blocking(std::time::Duration::from_secs(60)));
        handles.push(rt.handle());
        greenlets.push(g);
        drop(rt);
        // The hub of `run` too, with a greenlet of it kept.
        let [g] = greenrt::run(async { [greenrt::spawn(async { 2 })] });
        greenlets.push(g);
    }
    assert_eq!(
        open_fds(),
        before,
        "descriptors kept by handles of finished hubs"
    );
    drop((handles, greenlets));
}
