//! `pipectl completion bash|zsh|fish`: a shell completion script on stdout (clap_complete).
//!
//! ```text
//! pipectl completion bash > /etc/bash_completion.d/pipectl
//! pipectl completion zsh > "${fpath[1]}/_pipectl"
//! pipectl completion fish > ~/.config/fish/completions/pipectl.fish
//! ```

use std::io::Write;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell as Generator;

use crate::cli::Cli;
use crate::error::{CliError, Res};

/// The shells a script can be made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (source it, or put it in `bash_completion.d`).
    Bash,
    /// zsh (put it in a directory of `$fpath` as `_pipectl`).
    Zsh,
    /// fish (put it in `~/.config/fish/completions/`).
    Fish,
}

/// `completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let generator = match shell {
        Shell::Bash => Generator::Bash,
        Shell::Zsh => Generator::Zsh,
        Shell::Fish => Generator::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "pipectl", &mut out);
    out
}

/// `pipectl completion SHELL`.
pub fn run(args: CompletionArgs) -> Res {
    std::io::stdout()
        .lock()
        .write_all(&script(args.shell))
        .map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_s_script_names_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(script(shell)).unwrap();
            for word in [
                "pipectl",
                "create",
                "pipeline",
                "version",
                "completion",
                "rerun",
            ] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
    }
}
