//! One module per command: `commands/<noun>/<verb>.rs`.

mod audit;
mod chat;
mod init;
mod load;
mod model;
mod serve;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{AuditCommand, Cli, Command, ModelCommand};
use crate::home::Home;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::locate(cli.home.as_deref())?;
    match cli.command {
        Command::Init => init::run(&home),
        Command::Model(cmd) => match cmd {
            ModelCommand::Import { file, name } => {
                model::import::run(&home, &file, name.as_deref())
            }
            ModelCommand::List => model::list::run(&home),
            ModelCommand::Show { name } => model::show::run(&home, &name),
            ModelCommand::Verify { name } => model::verify::run(&home, name.as_deref()),
            ModelCommand::Rm { name } => model::rm::run(&home, &name),
        },
        Command::Chat(args) => chat::run(&home, &args),
        Command::Serve(args) => serve::run(&home, &args),
        Command::Audit(cmd) => match cmd {
            AuditCommand::Tail { count, json } => audit::tail::run(&home, count, json),
            AuditCommand::Show { index, json } => audit::show::run(&home, index, json),
            AuditCommand::Proof { index } => audit::proof::run(&home, index),
            AuditCommand::Export { dir } => audit::export::run(&home, &dir),
            AuditCommand::Verify { json } => audit::verify::run(&home, json),
        },
    }
}
