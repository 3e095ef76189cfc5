//! One module per command: `commands/<noun>/<verb>.rs`.

mod audit;
mod chat;
mod corpus;
mod init;
mod library;
mod load;
mod model;
mod policy;
mod principal;
mod seal;
mod serve;
mod specialist;
mod token;
mod tools;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{
    AuditCommand, Cli, Command, ModelCommand, PolicyCommand, PrincipalCommand, SealCommand,
    SpecialistCommand, TokenCommand,
};
use crate::home::Home;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::locate(cli.home.as_deref())?;
    match cli.command {
        Command::Init => init::run(&home),
        Command::Model(cmd) => match cmd {
            ModelCommand::Import {
                file,
                name,
                chat_template,
            } => model::import::run(&home, &file, name.as_deref(), chat_template.as_deref()),
            ModelCommand::List => model::list::run(&home),
            ModelCommand::Show { name } => model::show::run(&home, &name),
            ModelCommand::Verify { name } => model::verify::run(&home, name.as_deref()),
            ModelCommand::Rm { name } => model::rm::run(&home, &name),
        },
        Command::Corpus(cmd) => corpus::run(&home, cmd),
        Command::Specialist(cmd) => match cmd {
            SpecialistCommand::Add(args) => specialist::add::run(&home, &args),
            SpecialistCommand::List => specialist::list::run(&home),
            SpecialistCommand::Show { name, json } => specialist::show::run(&home, &name, json),
            SpecialistCommand::Rm { name } => specialist::rm::run(&home, &name),
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
        Command::Principal(cmd) => match cmd {
            PrincipalCommand::Add {
                name,
                kind,
                roles,
                attrs,
            } => principal::add(&home, &name, &kind, &roles, &attrs),
            PrincipalCommand::List { json } => principal::list(&home, json),
            PrincipalCommand::Show { name, json } => principal::show(&home, &name, json),
            PrincipalCommand::Disable { name } => principal::disable(&home, &name),
        },
        Command::Token(cmd) => match cmd {
            TokenCommand::Issue {
                principal,
                expires,
                scope,
            } => token::issue(&home, &principal, &expires, scope.as_deref()),
            TokenCommand::List { principal, json } => {
                token::list(&home, principal.as_deref(), json)
            }
            TokenCommand::Revoke { id } => token::revoke(&home, &id),
        },
        Command::Policy(cmd) => match cmd {
            PolicyCommand::Check {
                principal,
                action,
                resource,
                json,
            } => policy::check(&home, &principal, &action, &resource, json),
            PolicyCommand::Show { json } => policy::show(&home, json),
        },
        Command::Seal(cmd) => match cmd {
            SealCommand::Open {
                destination,
                purpose,
            } => seal::open(&home, &destination, &purpose),
            SealCommand::Close { destination } => seal::close(&home, &destination),
            SealCommand::Status { json } => seal::status(&home, json),
        },
    }
}
