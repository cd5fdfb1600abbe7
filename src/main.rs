#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let cli = kha::cli::Cli::parse();
    let code = kha::cli::run(cli).await?;
    std::process::exit(code);
}
