//! The examples print the interleavings they port from the notes: each is
//! run here, as a user runs it, and its whole output compared.
//!
//! `cargo test -p coro` (and `cargo nextest run`) builds the examples
//! beside the tests; a run of this file alone (`--test examples`) needs
//! `cargo build -p coro --examples` first.

use std::path::PathBuf;
use std::process::Command;

/// Runs example `name` from the build this test belongs to, and gives its
/// standard output.
fn run_example(name: &str) -> String {
    // `target/<profile>/deps/examples-<hash>` → `target/<profile>/examples`.
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in target/<profile>/deps")
        .join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test -p coro` or `cargo build -p coro --examples`",
        path.display()
    );
    let out = Command::new(&path)
        .output()
        .unwrap_or_else(|e| panic!("{} did not start: {e}", path.display()));
    assert!(
        out.status.success(),
        "{name} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the examples print UTF-8")
}

#[test]
#[cfg_attr(miri, ignore = "miri cannot start processes")]
fn coroutine_yield_alternates_producer_and_consumer() {
    let mut expected = String::new();
    for n in 1..=5 {
        expected += &format!(
            "[PRODUCER] Producing {n}...\n\
             [CONSUMER] Consuming {n}...\n\
             [PRODUCER] Consumer return: 200 OK\n"
        );
    }
    expected += "[PRODUCER] Consumer finished after 5 items\n";
    assert_eq!(run_example("coroutine_yield"), expected);
}

#[test]
#[cfg_attr(miri, ignore = "miri cannot start processes")]
fn multi_task_runs_the_tasks_round_robin() {
    let expected = "\
[turn  1] download: step 1 of 3
[turn  2] music: step 1 of 2
[turn  3] watch: step 1 of 4
[turn  4] download: step 2 of 3
[turn  5] music: step 2 of 2
[turn  6] watch: step 2 of 4
[turn  7] download: step 3 of 3
           music finished
[turn  8] watch: step 3 of 4
           download finished
[turn  9] watch: step 4 of 4
           watch finished
all tasks done in 9 turns
";
    assert_eq!(run_example("multi_task"), expected);
}

#[test]
#[cfg_attr(miri, ignore = "miri cannot start processes")]
fn coroutine_greenlet_prints_12_56_34_78() {
    let expected = "12\n56\n34\n78\nback in main: gr1 dead = false, gr2 dead = true\n";
    assert_eq!(run_example("coroutine_greenlet"), expected);
}
