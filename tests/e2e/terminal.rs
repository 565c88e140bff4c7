//! The interactive REPL in a real pseudo-terminal (tmux): the prompt, a statement typed over
//! two lines, Tab completion of a catalog name, an error that does not end the session,
//! history recall with the Up arrow, a progress line and Ctrl-C on a long query, `\timing`,
//! `\q`, and the history file. And `starflow query`'s progress line on a terminal (none when
//! stderr is a file).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use starflow_e2e::cli::{catalog_args, starflow_bin, starflow_query};
use starflow_e2e::{ServeProcess, big_catalog, eventually};

/// A tmux server of its own (its own socket), with one session running `command`.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `label` keeps the tmux servers of tests running at the same time apart.
    fn start(label: &str, command: &str) -> Self {
        let socket = format!("starflow-test-{label}-{}", std::process::id());
        let tmux = Self { socket };
        let status = tmux.cmd().args(["new-session", "-d", "-s", "repl", "-x", "160", "-y", "60", command]).status();
        assert!(status.expect("tmux is installed").success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Types `text` literally (a trailing `;` is tmux's command separator, so it goes as hex).
    fn type_text(&self, text: &str) {
        let (body, semicolon) = text.strip_suffix(';').map_or((text, false), |b| (b, true));
        if !body.is_empty() {
            assert!(self.cmd().args(["send-keys", "-t", "repl", "-l", body]).status().unwrap().success());
        }
        if semicolon {
            assert!(self.cmd().args(["send-keys", "-t", "repl", "-H", "3b"]).status().unwrap().success());
        }
    }

    /// Presses a key (`Enter`, `Tab`, `Up`).
    fn press(&self, key: &str) {
        assert!(self.cmd().args(["send-keys", "-t", "repl", key]).status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-t", "repl", "-S", "-1000"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[track_caller]
    fn wait_for(&self, needle: &str, times: usize) {
        let found = eventually(Duration::from_secs(30), || self.screen().matches(needle).count() >= times);
        assert!(found, "{needle:?} did not appear {times} time(s) on the screen:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
fn the_interactive_repl_edits_completes_recalls_and_quits() {
    let big = format!("big={}", big_catalog().display());
    let server = ServeProcess::start(
        &[&catalog_args()[..], &["--catalog".into(), big, "--workers".into(), "2".into()]].concat(),
    );
    let sql = "SELECT COUNT(*) FROM dp02 WHERE mag_i < 26";
    let count = starflow_query(&["--format", "csv"], sql).ok().lines().nth(1).expect("a count").to_string();
    let home = server.scratch();
    let command = format!(
        "env HOME={} {} repl --connect {}; echo \"[exited $?]\"; sleep 60",
        home.display(),
        starflow_bin().display(),
        server.conn.display()
    );
    let tmux = Tmux::start("repl", &command);
    tmux.wait_for("starflow>", 1);
    assert!(tmux.screen().contains("catalogs: big, dp02, nulls"), "{}", tmux.screen());

    // A statement over two lines; the catalog name completed with Tab.
    tmux.type_text("SELECT COUNT(*)");
    tmux.press("Enter");
    tmux.type_text("FROM dp0");
    tmux.press("Tab");
    tmux.type_text(" WHERE mag_i < 26;");
    tmux.press("Enter");
    tmux.wait_for("(1 row)", 1);
    let screen = tmux.screen();
    assert!(screen.contains("FROM dp02 WHERE mag_i < 26;"), "Tab completed dp0 → dp02:\n{screen}");
    assert!(screen.contains(&format!("| {count}")), "the count {count} is in the table:\n{screen}");
    assert!(screen.contains("Time: "), "elapsed time shown:\n{screen}");

    // An error, and the session goes on.
    tmux.type_text("SELEC 1;");
    tmux.press("Enter");
    tmux.wait_for("error:", 1);

    // Up twice recalls the two-line statement; Enter runs it again.
    tmux.press("Up");
    tmux.press("Up");
    tmux.press("Enter");
    tmux.wait_for("(1 row)", 2);

    // A long query shows a progress line; Ctrl-C cancels it and the session goes on.
    tmux.type_text("SELECT objectId, COUNT(*), AVG(mag_i) FROM big GROUP BY objectId ORDER BY objectId;");
    tmux.press("Enter");
    tmux.wait_for("Ctrl-C cancels", 1);
    assert!(tmux.screen().contains("rows read"), "{}", tmux.screen());
    tmux.press("C-c");
    tmux.wait_for("error: query cancelled", 1);
    tmux.type_text("SELECT COUNT(*) FROM nulls;");
    tmux.press("Enter");
    tmux.wait_for("(1 row)", 3);

    tmux.type_text("\\timing off");
    tmux.press("Enter");
    tmux.wait_for("timing is off", 1);
    tmux.type_text("\\q");
    tmux.press("Enter");
    tmux.wait_for("[exited 0]", 1);

    let history = std::fs::read_to_string(Path::new(home).join(".starflow").join("history")).expect("history file");
    assert!(history.contains("FROM dp02 WHERE mag_i < 26;"), "{history}");
    assert!(history.contains("SELEC 1;"), "{history}");
}

#[test]
fn a_long_query_shows_progress_on_a_terminal_only() {
    let big = format!("big={}", big_catalog().display());
    let sql = "SELECT objectId, COUNT(*) AS n FROM big GROUP BY objectId ORDER BY objectId LIMIT 3";
    let scratch = starflow_e2e::Scratch::new("progress");
    let err = scratch.join("stderr.txt");
    let command = format!(
        "{bin} query -w 1 --format csv --catalog {big} '{sql}'; echo \"[exited $?]\"; {bin} query -w 1 --catalog {big} '{sql}' > /dev/null 2> {err}; echo \"[second $?]\"; sleep 60",
        bin = starflow_bin().display(),
        err = err.display(),
    );
    let tmux = Tmux::start("query", &command);
    tmux.wait_for("partitions ", 1);
    let screen = tmux.screen();
    assert!(screen.contains("rows read (") && screen.contains("/s)"), "rows and their rate:\n{screen}");
    tmux.wait_for("[exited 0]", 1);
    let screen = tmux.screen();
    assert!(screen.contains("objectId,n"), "the result:\n{screen}");
    assert!(!screen.contains("rows read"), "the progress line is cleared at the end:\n{screen}");
    tmux.wait_for("[second 0]", 1);
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "", "no progress when stderr is a file");
}
