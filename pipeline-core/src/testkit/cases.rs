//! The individual conformance checks. Each starts its own workers, stops them, and asserts
//! that no process it started is left (see the parent module).

use std::time::{Duration, Instant};

use crate::executor::CancellationToken;

use super::{Check, Harness};
use crate::executor::output::{OutputEntry, OutputError, OutputScanner, scan_output};
use crate::executor::policy::{DatumPolicy, Verdict};
use crate::executor::{DatumOutcome, LogStream, Program, ProgramKind, Worker};

async fn stop(check: &Check<'_>, worker: &mut dyn Worker) {
    if let Err(e) = worker.stop().await {
        panic!("{}: stop failed: {e}", check.name);
    }
}

/// Code with hard-coded `/pfs/<input>/...` and `/pfs/out/...` paths (as Pachyderm users write
/// it) reads its input and writes its output.
pub async fn pfs_layout(h: &Harness) {
    let c = Check::new(h, "pfs_layout");
    let mut w = h.start_worker(c.name).await;
    let mut s = h.scratch();
    s.add_input("in", "dir/a.txt", b"alpha\n");
    s.add_input("other", "b.txt", b"beta\n");
    let task = c.sh(
        &s,
        "cat /pfs/in/dir/a.txt /pfs/other/b.txt > /pfs/out/joined.txt && ls /pfs > /pfs/out/ls.txt",
    );
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(
        outcome,
        DatumOutcome::Exited { exit_code: 0 },
        "pfs_layout: {:?}",
        c.logs.lines()
    );
    assert_eq!(s.read_out("joined.txt"), "alpha\nbeta\n");
    let listing = s.read_out("ls.txt");
    for name in ["in", "other", "out"] {
        assert!(
            listing.lines().any(|l| l == name),
            "pfs_layout: `ls /pfs` lacks {name:?}: {listing:?}"
        );
    }
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// The environment is exactly `DatumTask::env` on top of the base environment: reference §3.4
/// variables, odd values byte for byte, later duplicates winning, and `<input>` paths that
/// resolve.
pub async fn env_vars(h: &Harness) {
    let c = Check::new(h, "env_vars");
    let mut w = h.start_worker(c.name).await;
    let mut s = h.scratch();
    s.add_input("images", "dir/c.png", b"png-bytes");
    let mut task = c.task(&s, &["env"]);
    let datum_id = "d".repeat(64);
    let expected: Vec<(String, String)> = vec![
        ("GREETING".into(), "hello world".into()),
        ("images".into(), "/pfs/images/dir/c.png".into()),
        ("PACH_OUTPUT_DIR".into(), "/pfs/out".into()),
        (
            "images_COMMIT".into(),
            "0123456789abcdef0123456789abcdef".into(),
        ),
        ("PACH_DATUM_images_JOIN_ON".into(), "key1".into()),
        ("PACH_DATUM_images_GROUP_BY".into(), "group1".into()),
        ("PACH_DATUM_ID".into(), datum_id.clone()),
        (
            "PACH_JOB_ID".into(),
            "fedcba9876543210fedcba9876543210".into(),
        ),
        (
            "PACH_OUTPUT_COMMIT_ID".into(),
            "fedcba9876543210fedcba9876543210".into(),
        ),
        ("PPS_PIPELINE_NAME".into(), "edges".into()),
        ("PPS_PROJECT_NAME".into(), "default".into()),
    ];
    task.env.extend(expected.iter().cloned());
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(k, v)| {
            let v = h.expected_env_path(&s, &v);
            (k, v)
        })
        .collect();
    task.env
        .push(("ODD".into(), "a b='c' \"d\" $HOME `x` \\ ; é".into()));
    task.env.push(("DUP".into(), "first".into()));
    task.env.push(("DUP".into(), "last".into()));
    task.datum_id = datum_id;
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(
        outcome,
        DatumOutcome::Exited { exit_code: 0 },
        "env_vars: `env` failed"
    );
    let lines = c.logs.stream(LogStream::Stdout);
    for (k, v) in &expected {
        let want = format!("{k}={v}");
        assert!(
            lines.contains(&want),
            "env_vars: `{want}` missing from the environment: {lines:?}"
        );
    }
    let dup: Vec<&String> = lines.iter().filter(|l| l.starts_with("DUP=")).collect();
    assert_eq!(dup, ["DUP=last"], "env_vars: the last duplicate must win");

    // Byte-exact values, and `$images` resolves to the datum's file.
    let mut task = c.sh(
        &s,
        "printf '%s' \"$ODD\" > /pfs/out/odd && cat \"$images\" > /pfs/out/via_env",
    );
    task.env
        .push(("ODD".into(), "a b='c' \"d\" $HOME `x` \\ ; é".into()));
    task.env
        .push(("images".into(), "/pfs/images/dir/c.png".into()));
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(
        outcome,
        DatumOutcome::Exited { exit_code: 0 },
        "env_vars: {:?}",
        c.logs.lines()
    );
    assert_eq!(s.read_out("odd"), "a b='c' \"d\" $HOME `x` \\ ; é");
    assert_eq!(s.read_out("via_env"), "png-bytes");
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// `stdin` lines reach the program (`lines.join("\n") + "\n"`), also as a script for `sh`; a
/// program that never reads its stdin is not failed by the broken pipe.
pub async fn stdin_lines(h: &Harness) {
    let c = Check::new(h, "stdin_lines");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let mut task = c.task(&s, &["sh"]);
    let script: Vec<String> = vec![
        "echo one > /pfs/out/x".into(),
        "echo two >> /pfs/out/x".into(),
        "cat /pfs/out/x".into(),
    ];
    task.program = Program::new(ProgramKind::Cmd, vec!["sh".into()], &script);
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(
        outcome,
        DatumOutcome::Exited { exit_code: 0 },
        "stdin_lines: {:?}",
        c.logs.lines()
    );
    assert_eq!(s.read_out("x"), "one\ntwo\n");
    assert_eq!(c.logs.stream(LogStream::Stdout), ["one", "two"]);

    let s2 = h.scratch();
    let mut task = c.task(&s2, &["cat"]);
    task.program = Program::new(
        ProgramKind::Cmd,
        vec!["cat".into()],
        &["a".into(), "b c".into()],
    );
    c.logs.clear();
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(outcome, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(c.logs.stream(LogStream::Stdout), ["a", "b c"]);

    // 1 MiB of stdin to a program that exits without reading it.
    let s3 = h.scratch();
    let mut task = c.task(&s3, &["true"]);
    let big = vec!["x".repeat(1023); 1024];
    task.program = Program::new(
        ProgramKind::Cmd,
        vec!["sh".into(), "-c".into(), "exit 0".into()],
        &big,
    );
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(
        outcome,
        DatumOutcome::Exited { exit_code: 0 },
        "stdin_lines: broken pipe must be ignored"
    );
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// `argv` is executed directly: no globbing, no variable expansion, no pipes.
pub async fn no_shell(h: &Harness) {
    let c = Check::new(h, "no_shell");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.task(&s, &["echo", "$HOME", "*", "a|b", "c;d", "'q'"]);
    let outcome = c.run(&mut *w, task).await;
    assert_eq!(outcome, DatumOutcome::Exited { exit_code: 0 });
    assert_eq!(c.logs.stream(LogStream::Stdout), ["$HOME * a|b c;d 'q'"]);
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// Exit codes reach the engine, whose policy maps them to `Success`/`Failed` honouring
/// `accept_return_code`.
pub async fn exit_codes(h: &Harness) {
    let c = Check::new(h, "exit_codes");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let cases: [(&str, &[i64], Verdict); 5] = [
        ("exit 0", &[], Verdict::Success { exit_code: 0 }),
        ("exit 3", &[], Verdict::Failed { exit_code: 3 }),
        ("exit 3", &[3], Verdict::Success { exit_code: 3 }),
        ("exit 4", &[3, 5], Verdict::Failed { exit_code: 4 }),
        ("exit 255", &[255], Verdict::Success { exit_code: 255 }),
    ];
    for (script, accept, want) in cases {
        let task = c.sh(&s, script);
        let policy = DatumPolicy {
            accept_return_code: accept.to_vec(),
            ..DatumPolicy::default()
        };
        let got = c.run_with(&mut *w, task, &policy).await;
        assert_eq!(
            got, want,
            "exit_codes: `{script}` with accept_return_code {accept:?}"
        );
    }
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// A program that does not exist is a user-code failure with exit code 126 or 127.
pub async fn program_not_found(h: &Harness) {
    let c = Check::new(h, "program_not_found");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.task(&s, &["/no/such/program-xyz", "arg"]);
    let got = c.run(&mut *w, task).await;
    assert!(
        matches!(
            got,
            DatumOutcome::Exited {
                exit_code: 126 | 127
            }
        ),
        "program_not_found: expected Failed 126/127, got {got:?}"
    );
    // The worker is still usable.
    let task = c.sh(&s, "exit 0");
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    stop(&c, &mut *w).await;
}

/// A program killed by a signal it did not get from the executor is `Signaled`.
pub async fn signals(h: &Harness) {
    let c = Check::new(h, "signals");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    for (script, signal) in [
        ("kill -TERM $$", 15),
        ("kill -KILL $$", 9),
        ("kill -USR1 $$", 10),
    ] {
        let task = c.sh(&s, script);
        let got = c.run(&mut *w, task).await;
        assert_eq!(
            got,
            DatumOutcome::Signaled { signal },
            "signals: `{script}`"
        );
    }
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// Background children are killed when the main process exits, even on success, and the run
/// does not wait for them (they may hold stdout open).
pub async fn background_killed_on_exit(h: &Harness) {
    let c = Check::new(h, "background_killed_on_exit");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let started = Instant::now();
    let task = c.sh(
        &s,
        "sleep 100 & sleep 100 > /dev/null 2>&1 & echo started; exit 0",
    );
    let got = c.run(&mut *w, task).await;
    assert_eq!(got, DatumOutcome::Exited { exit_code: 0 });
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "background_killed_on_exit: run waited for background children ({:?})",
        started.elapsed()
    );
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// `datum_timeout`, armed by the engine's policy around the worker, cancels the attempt: the
/// backend kills the whole process tree promptly and the attempt is reported `TimedOut`.
pub async fn timeout_kills_tree(h: &Harness) {
    let c = Check::new(h, "timeout_kills_tree");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.sh(&s, "sleep 100 & sleep 100");
    let policy = DatumPolicy {
        timeout: Some(Duration::from_millis(500)),
        ..DatumPolicy::default()
    };
    let started = Instant::now();
    let got = c.run_with(&mut *w, task, &policy).await;
    assert_eq!(got, Verdict::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "timeout_kills_tree: took {:?}",
        started.elapsed()
    );
    c.assert_no_leftovers(&mut *w).await;
    // The worker is usable afterwards.
    let task = c.sh(&s, "echo after > /pfs/out/after");
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert_eq!(s.read_out("after"), "after\n");
    stop(&c, &mut *w).await;
}

/// Firing the cancellation token kills the tree and reports `Cancelled`, also when it fired
/// before the call.
pub async fn cancellation(h: &Harness) {
    let c = Check::new(h, "cancellation");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.sh(&s, "sleep 100 & sleep 100");
    let token = task.cancel.clone();
    let fire = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel();
    });
    let got = c.run(&mut *w, task).await;
    let _ = fire.await;
    assert_eq!(got, DatumOutcome::Cancelled);
    c.assert_no_leftovers(&mut *w).await;

    let mut task = c.sh(&s, "sleep 100 & sleep 100");
    let token = CancellationToken::new();
    token.cancel();
    task.cancel = token;
    let started = Instant::now();
    let got = c.run(&mut *w, task).await;
    assert_eq!(
        got,
        DatumOutcome::Cancelled,
        "cancellation: token fired before the call"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// Dropping the `run` future kills the tree; the worker stays usable.
pub async fn drop_kills(h: &Harness) {
    let c = Check::new(h, "drop_kills");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.sh(&s, "sleep 100 & sleep 100");
    let res = tokio::time::timeout(Duration::from_millis(500), w.run(task)).await;
    assert!(
        res.is_err(),
        "drop_kills: `sleep 100` finished early: {res:?}"
    );
    c.assert_no_leftovers(&mut *w).await;
    let task = c.sh(&s, "exit 0");
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    stop(&c, &mut *w).await;
}

/// `working_dir` is where the program starts, as user code sees paths.
pub async fn working_dir(h: &Harness) {
    let c = Check::new(h, "working_dir");
    let mut w = h.start_worker(c.name).await;
    let mut s = h.scratch();
    s.add_input("in", "sub/here.txt", b"x");
    let mut task = c.sh(&s, "ls > /pfs/out/ls.txt");
    task.working_dir = Some("/pfs/in/sub".into());
    let got = c.run(&mut *w, task).await;
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "working_dir: {:?}",
        c.logs.lines()
    );
    assert_eq!(s.read_out("ls.txt"), "here.txt\n");
    stop(&c, &mut *w).await;
}

/// `transform.user` applies: a file written to `/pfs/out` belongs to that user on the host.
/// Only when enabled with [`Harness::user_check`]; otherwise returns at once.
pub async fn user(h: &Harness) {
    let Some((spec, uid)) = h.user_check.clone() else {
        return;
    };
    let c = Check::new(h, "user");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let mut task = c.sh(&s, "echo x > /pfs/out/owned");
    task.user = Some(spec.clone());
    let got = c.run(&mut *w, task).await;
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "user: running as {spec:?}: {:?}",
        c.logs.lines()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(s.out().join("owned")) {
            Ok(m) => assert_eq!(m.uid(), uid, "user: owner of a file written as {spec:?}"),
            Err(e) => panic!("user: output missing: {e}"),
        }
    }
    #[cfg(not(unix))]
    let _ = uid;
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// Outputs come back with nested directories, empty files, spaces; names PFS rejects
/// (non-ASCII, glob characters) come back too and are reported by the scanner.
pub async fn outputs(h: &Harness) {
    let c = Check::new(h, "outputs");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.sh(
        &s,
        "mkdir -p /pfs/out/a/b/c && echo deep > /pfs/out/a/b/c/d.txt && \
         : > /pfs/out/empty && mkdir /pfs/out/emptydir && \
         echo spaced > '/pfs/out/with space.txt' && echo x > /pfs/out/a/sibling",
    );
    let got = c.run(&mut *w, task).await;
    assert_eq!(
        got,
        DatumOutcome::Exited { exit_code: 0 },
        "outputs: {:?}",
        c.logs.lines()
    );
    let entries: Vec<OutputEntry> = match OutputScanner::new(&s.out()) {
        Ok(sc) => sc
            .map(|e| e.unwrap_or_else(|e| panic!("outputs: {e}")))
            .collect(),
        Err(e) => panic!("outputs: {e}"),
    };
    let want = [
        OutputEntry::Dir { path: "a".into() },
        OutputEntry::Dir { path: "a/b".into() },
        OutputEntry::Dir {
            path: "a/b/c".into(),
        },
        OutputEntry::File {
            path: "a/b/c/d.txt".into(),
            len: 5,
        },
        OutputEntry::File {
            path: "a/sibling".into(),
            len: 2,
        },
        OutputEntry::File {
            path: "empty".into(),
            len: 0,
        },
        OutputEntry::Dir {
            path: "emptydir".into(),
        },
        OutputEntry::File {
            path: "with space.txt".into(),
            len: 7,
        },
    ];
    assert_eq!(entries, want, "outputs: unexpected output tree");

    let s2 = h.scratch();
    let task = c.sh(
        &s2,
        "echo u > /pfs/out/héllo.txt && echo g > '/pfs/out/glob*name'",
    );
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert_eq!(
        s2.read_out("héllo.txt"),
        "u\n",
        "outputs: unicode name not collected"
    );
    let errors: Vec<OutputError> = match OutputScanner::new(&s2.out()) {
        Ok(sc) => sc.filter_map(Result::err).collect(),
        Err(e) => panic!("outputs: {e}"),
    };
    let named: Vec<String> = errors
        .iter()
        .map(|e| match e {
            OutputError::InvalidName { path, .. } => path.clone(),
            other => panic!("outputs: unexpected error {other}"),
        })
        .collect();
    assert_eq!(
        named,
        ["glob*name", "héllo.txt"],
        "outputs: invalid names not reported"
    );
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// Symlinks in `/pfs/out` come back as symlinks; those leading outside `/pfs/out` and the
/// inputs are reported naming the link, links into an input as such; none is followed.
pub async fn symlinks_outside(h: &Harness) {
    let c = Check::new(h, "symlinks_outside");
    let mut w = h.start_worker(c.name).await;
    let mut s = h.scratch();
    s.add_input("in", "a.txt", b"input");
    let task = c.sh(
        &s,
        "echo t > /pfs/out/target && ln -s target /pfs/out/inside && \
         ln -s /etc/passwd /pfs/out/leak && ln -s ../in/a.txt /pfs/out/up",
    );
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 },
        "symlinks_outside: {:?}",
        c.logs.lines()
    );
    let leak = s.out().join("leak");
    match std::fs::symlink_metadata(&leak) {
        Ok(m) => assert!(
            m.file_type().is_symlink(),
            "symlinks_outside: `leak` was not kept as a symlink"
        ),
        Err(e) => panic!("symlinks_outside: `leak` missing on the host: {e}"),
    }
    let results: Vec<_> = match OutputScanner::new(&s.out()) {
        Ok(sc) => sc.collect(),
        Err(e) => panic!("symlinks_outside: {e}"),
    };
    let mut outside = Vec::new();
    let mut ok = Vec::new();
    for r in results {
        match r {
            Ok(e) => ok.push(e),
            Err(OutputError::SymlinkOutside { path, .. }) => outside.push(path),
            Err(e) => panic!("symlinks_outside: unexpected error {e}"),
        }
    }
    assert_eq!(
        outside,
        ["leak"],
        "symlinks_outside: escaping links not reported"
    );
    assert!(ok.contains(&OutputEntry::Symlink {
        path: "inside".into(),
        target: "target".into()
    }));
    assert!(
        ok.contains(&OutputEntry::InputLink {
            path: "up".into(),
            input: "in".into(),
            target: "/a.txt".into()
        }),
        "symlinks_outside: a link into an input is not reported as one: {ok:?}"
    );
    assert!(matches!(
        scan_output(&s.out()),
        Err(OutputError::SymlinkOutside { .. })
    ));
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// stdout and stderr arrive line by line, kept apart, the last unterminated line included;
/// a very long line arrives whole or split, without losing bytes.
pub async fn logs(h: &Harness) {
    let c = Check::new(h, "logs");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let task = c.sh(
        &s,
        "echo out1; echo err1 >&2; echo out2; echo; echo err2 >&2; printf 'no newline'",
    );
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    assert_eq!(
        c.logs.stream(LogStream::Stdout),
        ["out1", "out2", "", "no newline"]
    );
    assert_eq!(c.logs.stream(LogStream::Stderr), ["err1", "err2"]);

    c.logs.clear();
    let task = c.sh(&s, "head -c 300000 /dev/zero | tr '\\0' a; echo; echo tail");
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    let out = c.logs.stream(LogStream::Stdout);
    assert_eq!(
        out.last().map(String::as_str),
        Some("tail"),
        "logs: last line"
    );
    let long: String = out[..out.len() - 1].concat();
    assert_eq!(long.len(), 300_000, "logs: bytes of a long line lost");
    assert!(long.bytes().all(|b| b == b'a'));

    c.logs.clear();
    let task = c.sh(
        &s,
        "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done",
    );
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    let out = c.logs.stream(LogStream::Stdout);
    assert_eq!(out.len(), 2000, "logs: lines lost");
    assert!(
        out.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line{i}")),
        "logs: lines out of order"
    );
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// User code cannot modify its inputs (when the backend says it enforces this, in particular
/// when the executor says so to the engine, which then trusts the scratch directory to hold
/// only what it laid out); the host copy stays intact either way.
pub async fn inputs_read_only(h: &Harness) {
    let c = Check::new(h, "inputs_read_only");
    let mut w = h.start_worker(c.name).await;
    let mut s = h.scratch();
    s.add_input("in", "dir/a.txt", b"original");
    let task = c.sh(
        &s,
        "if echo changed > /pfs/in/dir/a.txt; then echo wrote >> /pfs/out/r; fi; \
         if mkdir /pfs/in/new 2>/dev/null; then echo mkdir >> /pfs/out/r; fi; \
         if ln -s x /pfs/in/link 2>/dev/null; then echo ln >> /pfs/out/r; fi; \
         if mkdir /pfs/beside 2>/dev/null; then echo beside >> /pfs/out/r; fi; exit 0",
    );
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 }
    );
    let r = std::fs::read_to_string(s.out().join("r")).unwrap_or_default();
    if h.executor.keeps_inputs_read_only() {
        // The engine trusts `/pfs` to hold only what it laid out: nothing may be added.
        assert_eq!(
            r, "",
            "inputs_read_only: user code changed /pfs outside out"
        );
    }
    if h.inputs_read_only || h.executor.keeps_inputs_read_only() {
        let changed: Vec<&str> = r.lines().filter(|l| *l != "beside").collect();
        assert!(
            changed.is_empty(),
            "inputs_read_only: user code modified its inputs: {changed:?}"
        );
        let content = std::fs::read(s.path().join("in/dir/a.txt")).unwrap_or_default();
        assert_eq!(
            content, b"original",
            "inputs_read_only: input changed on the host"
        );
    }
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// Several workers run datums at the same time, with distinct indexes.
pub async fn parallel_workers(h: &Harness) {
    let c = Check::new(h, "parallel_workers");
    let n = h.parallel_workers;
    let mut workers = h.start_workers(c.name, n).await;
    let mut indexes: Vec<usize> = workers.iter().map(|w| w.index()).collect();
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (0..n).collect::<Vec<_>>(),
        "parallel_workers: worker indexes"
    );
    let scratches: Vec<_> = (0..n).map(|_| h.scratch()).collect();
    let started = Instant::now();
    let runs = workers
        .iter_mut()
        .zip(&scratches)
        .enumerate()
        .map(|(i, (w, s))| {
            let task = c.sh(s, &format!("sleep 2; echo {i} > /pfs/out/i"));
            w.run(task)
        });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(o) => assert_eq!(o, DatumOutcome::Exited { exit_code: 0 }),
            Err(e) => panic!("parallel_workers: worker {i}: {e}"),
        }
        assert_eq!(scratches[i].read_out("i"), format!("{i}\n"));
    }
    // Sequential would take 2 s × n; allow generous slack for slow machines.
    assert!(
        elapsed < Duration::from_secs(2 * n as u64 - 1),
        "parallel_workers: {n} datums of 2 s took {elapsed:?}: not run in parallel"
    );
    if let Some(w) = workers.first_mut() {
        c.assert_no_leftovers(&mut **w).await;
    }
    for w in &mut workers {
        stop(&c, &mut **w).await;
    }
}

/// One worker runs many datums; nothing (files under `/pfs`, env vars, processes) leaks from
/// one datum to the next.
pub async fn worker_reuse(h: &Harness) {
    let c = Check::new(h, "worker_reuse");
    let mut w = h.start_worker(c.name).await;
    // Each datum checks it sees only its own input, an empty out and no env var of datum 0,
    // then leaves a background sleeper behind on purpose and writes its number; every 100
    // datums the suite checks that no sleeper of an earlier datum is alive.
    let script = "[ \"$(ls -A /pfs/out)\" = \"\" ] || { echo dirty-out >&2; exit 11; }; \
         [ \"$(ls /pfs/in)\" = \"f$SEQ\" ] || { echo foreign-input >&2; exit 12; }; \
         [ -z \"$ONLY_FIRST\" ] || [ \"$SEQ\" = 0 ] || { echo env-leak >&2; exit 13; }; \
         sleep 100 & echo \"$SEQ\" > /pfs/out/seq";
    for i in 0..h.reuse_datums {
        let mut s = h.scratch();
        s.add_input("in", &format!("f{i}"), b"");
        let mut task = c.sh(&s, script);
        task.env.push(("SEQ".into(), i.to_string()));
        if i == 0 {
            task.env.push(("ONLY_FIRST".into(), "1".into()));
        }
        let got = c.run(&mut *w, task).await;
        assert_eq!(
            got,
            DatumOutcome::Exited { exit_code: 0 },
            "worker_reuse: datum {i}: {:?}",
            c.logs.stream(LogStream::Stderr)
        );
        assert_eq!(
            s.read_out("seq"),
            format!("{i}\n"),
            "worker_reuse: datum {i}"
        );
        if i % 100 == 99 {
            c.assert_no_leftovers(&mut *w).await;
        }
    }
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// A large output (`Harness::large_output_bytes`, 1 GiB by default) comes back whole, and the
/// host process's resident memory does not grow with it (on Linux).
pub async fn large_output(h: &Harness) {
    let c = Check::new(h, "large_output");
    let mut w = h.start_worker(c.name).await;
    let s = h.scratch();
    let mib = h.large_output_bytes.div_ceil(1 << 20).max(1);
    let task = c.sh(
        &s,
        &format!("dd if=/dev/zero of=/pfs/out/big bs=1048576 count={mib} 2>/dev/null"),
    );
    reset_peak_rss();
    let before = peak_rss_bytes();
    assert_eq!(
        c.run(&mut *w, task).await,
        DatumOutcome::Exited { exit_code: 0 },
        "large_output: {:?}",
        c.logs.lines()
    );
    let after = peak_rss_bytes();
    let len = std::fs::metadata(s.out().join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(len, mib << 20, "large_output: size on the host");
    if let (Some(b), Some(a)) = (before, after) {
        let limit = 256 << 20;
        assert!(
            a.saturating_sub(b) < limit.min(mib << 19).max(64 << 20),
            "large_output: peak RSS grew by {} MiB for a {mib} MiB output",
            a.saturating_sub(b) >> 20
        );
    }
    c.assert_no_leftovers(&mut *w).await;
    stop(&c, &mut *w).await;
}

/// `stop` is idempotent and `remove_pipeline` is idempotent.
pub async fn stop_and_remove(h: &Harness) {
    let c = Check::new(h, "stop_and_remove");
    let mut w = h.start_worker(c.name).await;
    stop(&c, &mut *w).await;
    stop(&c, &mut *w).await;
    let pipeline = format!("{}-{}", h.pool.pipeline, c.name.replace('_', "-"));
    for _ in 0..2 {
        if let Err(e) = h.executor.remove_pipeline(&h.pool.project, &pipeline).await {
            panic!("stop_and_remove: remove_pipeline: {e}");
        }
    }
}

fn reset_peak_rss() {
    // "5" resets the peak resident set size (Linux ≥ 4.0); ignored elsewhere.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
