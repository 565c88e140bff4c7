//! A ready `sbatch` script that runs starflow under `srun` (as dask-jobqueue's
//! `job_script()` writes one): `#SBATCH` resources, then one `srun` line with every
//! argument shell-quoted, so an SQL statement reaches each process unchanged.

/// Resources and options of the batch job. Values are written into the script verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOptions {
    /// Nodes to allocate (`#SBATCH --nodes`).
    pub nodes: usize,
    /// CPUs used on each node; each task gets `cpus_per_node / tasks_per_node` (at least 1)
    /// as `--cpus-per-task`, which starflow reads back as its worker threads.
    pub cpus_per_node: usize,
    /// starflow processes per node (`#SBATCH --ntasks-per-node`); default 1, the usual choice
    /// since one process runs many worker threads.
    pub tasks_per_node: usize,
    /// Memory per node (`#SBATCH --mem`, e.g. `64G`); omitted when None.
    pub mem: Option<String>,
    /// Wall-clock limit (`#SBATCH --time`, e.g. `01:00:00`); omitted when None.
    pub time: Option<String>,
    /// Partition (`#SBATCH --partition`); omitted when None.
    pub partition: Option<String>,
    /// Account to charge (`#SBATCH --account`); omitted when None.
    pub account: Option<String>,
    /// Job name (`#SBATCH --job-name`).
    pub job_name: String,
    /// Network interface the processes talk over (`--interface IF`, e.g. `ib0`); None: the
    /// addresses of SLURM's node names.
    pub interface: Option<String>,
    /// Standard output file (`#SBATCH --output`, e.g. `starflow-%j.out`); omitted when None.
    pub output: Option<String>,
}

impl Default for ScriptOptions {
    /// One node, one CPU, one task, job name `starflow`, everything else left to SLURM.
    fn default() -> Self {
        Self {
            nodes: 1,
            cpus_per_node: 1,
            tasks_per_node: 1,
            mem: None,
            time: None,
            partition: None,
            account: None,
            job_name: "starflow".to_string(),
            interface: None,
            output: None,
        }
    }
}

impl ScriptOptions {
    /// CPUs (worker threads) of each task: `cpus_per_node / tasks_per_node`, at least 1.
    pub fn cpus_per_task(&self) -> usize {
        (self.cpus_per_node / self.tasks_per_node.max(1)).max(1)
    }
}

/// The sbatch script running `starflow ARGS...` on every task of the job.
///
/// `starflow` is the path of the binary as the compute nodes see it; `args` its arguments,
/// the subcommand first (`query --catalog ... "SELECT ..."`). `--interface IF`, an option
/// of the subcommand, goes right after `args[0]`. `srun` gets `--cpus-per-task` again
/// (since SLURM 22.05 srun no longer inherits it from sbatch) and `--cpu-bind=none`, so a
/// process's worker threads may use all of its CPUs.
pub fn sbatch_script(opts: &ScriptOptions, starflow: &str, args: &[String]) -> String {
    let cpus = opts.cpus_per_task();
    let mut s = String::from("#!/usr/bin/env bash\n");
    let mut directive = |name: &str, value: &str| s.push_str(&format!("#SBATCH --{name}={value}\n"));
    directive("job-name", &opts.job_name);
    directive("nodes", &opts.nodes.to_string());
    directive("ntasks-per-node", &opts.tasks_per_node.max(1).to_string());
    directive("cpus-per-task", &cpus.to_string());
    let optional = [
        ("mem", &opts.mem),
        ("time", &opts.time),
        ("partition", &opts.partition),
        ("account", &opts.account),
        ("output", &opts.output),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            directive(name, value);
        }
    }
    s.push_str("\nset -euo pipefail\n\n");

    let mut words = vec!["srun".to_string(), format!("--cpus-per-task={cpus}"), "--cpu-bind=none".to_string()];
    words.push(shell_quote(starflow));
    let (subcommand, rest) = args.split_first().map_or((None, args), |(first, rest)| (Some(first), rest));
    words.extend(subcommand.map(|a| shell_quote(a)));
    if let Some(interface) = &opts.interface {
        words.push("--interface".to_string());
        words.push(shell_quote(interface));
    }
    words.extend(rest.iter().map(|a| shell_quote(a)));
    s.push_str(&words.join(" "));
    s.push('\n');
    s
}

/// `text` as one single-quoted shell word: `it's` → `'it'\''s'`. Nothing inside is expanded.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const SQL: &str = "SELECT *, 'it''s' AS q, \"ra\" FROM gaia WHERE name LIKE '%M 31%'\n  AND $HOME = `id` -- \\ end";

    /// Runs `script` in bash with `srun` replaced by a function printing its arguments.
    fn srun_words(script: &str) -> Vec<String> {
        let fake = format!("srun() {{ printf '%s\\0' \"$@\"; }}\n{script}");
        let out = Command::new("bash").arg("-c").arg(fake).output().expect("bash runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        text.strip_suffix('\0').unwrap().split('\0').map(str::to_string).collect()
    }

    #[test]
    fn quoted_words_round_trip_through_bash() {
        for text in [SQL, "", "'", "''", "a b", "*", "\\'\"$(x)"] {
            let line = format!("printf '%s\\0' {}", shell_quote(text));
            let out = Command::new("bash").arg("-c").arg(line).output().expect("bash runs");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{text}\0"));
        }
    }

    #[test]
    fn script_arguments_survive_srun() {
        let opts = ScriptOptions {
            nodes: 4,
            cpus_per_node: 64,
            tasks_per_node: 2,
            interface: Some("ib0".into()),
            ..ScriptOptions::default()
        };
        let args: Vec<String> = ["query", "--catalog", "gaia=/data/gaia dr3/*.parquet", SQL].map(String::from).into();
        let script = sbatch_script(&opts, "/opt/star flow/bin/starflow", &args);
        assert_eq!(
            srun_words(&script),
            [
                "--cpus-per-task=32",
                "--cpu-bind=none",
                "/opt/star flow/bin/starflow",
                "query",
                "--interface",
                "ib0",
                "--catalog",
                "gaia=/data/gaia dr3/*.parquet",
                SQL
            ]
        );
    }

    #[test]
    fn script_has_directives_only_when_given() {
        let bare = sbatch_script(&ScriptOptions::default(), "starflow", &[]);
        assert_eq!(
            bare,
            "#!/usr/bin/env bash\n#SBATCH --job-name=starflow\n#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=1\n\
             #SBATCH --cpus-per-task=1\n\nset -euo pipefail\n\nsrun --cpus-per-task=1 --cpu-bind=none 'starflow'\n"
        );
        let opts = ScriptOptions {
            nodes: 2,
            cpus_per_node: 48,
            mem: Some("180G".into()),
            time: Some("02:00:00".into()),
            partition: Some("cpu".into()),
            account: Some("astro42".into()),
            job_name: "xmatch".into(),
            output: Some("starflow-%j.out".into()),
            ..ScriptOptions::default()
        };
        let full = sbatch_script(&opts, "starflow", &["query".into()]);
        for line in [
            "#SBATCH --job-name=xmatch",
            "#SBATCH --nodes=2",
            "#SBATCH --ntasks-per-node=1",
            "#SBATCH --cpus-per-task=48",
            "#SBATCH --mem=180G",
            "#SBATCH --time=02:00:00",
            "#SBATCH --partition=cpu",
            "#SBATCH --account=astro42",
            "#SBATCH --output=starflow-%j.out",
            "srun --cpus-per-task=48 --cpu-bind=none 'starflow' 'query'",
        ] {
            assert!(full.lines().any(|l| l == line), "missing {line:?} in\n{full}");
        }
        assert!(!full.contains("--interface"));
    }

    #[test]
    fn cpus_per_task_divides_and_stays_positive() {
        let opts =
            |cpus_per_node, tasks_per_node| ScriptOptions { cpus_per_node, tasks_per_node, ..Default::default() };
        assert_eq!(opts(64, 4).cpus_per_task(), 16);
        assert_eq!(opts(10, 3).cpus_per_task(), 3);
        assert_eq!(opts(2, 4).cpus_per_task(), 1);
        assert_eq!(opts(8, 0).cpus_per_task(), 8);
    }
}
