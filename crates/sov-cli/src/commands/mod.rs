//! One module per command: `commands/<noun>/<verb>.rs`.

mod chat;
mod init;
mod load;
mod model;
mod serve;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, ModelCommand};
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
    }
}
