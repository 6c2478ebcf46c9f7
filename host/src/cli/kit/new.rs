//! `powernode plugin new`: a step project from the templates in `templates/`, with the SDK's
//! helper and a copy of the WIT for Python and JavaScript.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{Lang, PROJECT_FILE, Project, ProjectWorld, World, check_name};

/// Arguments of `powernode plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The step type: a pipeline's `type:` and the built file `NAME.wasm` (lowercase letters,
    /// digits and `_`).
    name: String,
    /// The language to write the step in.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Python and JavaScript: the WIT world, i.e. the host interfaces the step imports
    /// (`log-only` when absent).
    #[arg(long, value_enum)]
    world: Option<World>,
    /// The folder to write (`./NAME` when absent); it must not exist or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust: build against this `powernode-sdk` folder (a Powernode checkout's `sdk/`)
    /// instead of fetching the SDK by git.
    #[arg(long)]
    sdk_path: Option<PathBuf>,
}

/// The WIT contract this binary serves, copied into Python and JavaScript projects: their
/// toolchains read it, and a project keeps the version it was made against.
const WIT: &[(&str, &str)] = &[
    ("wit/step.wit", include_str!("../../../../wit/step.wit")),
    ("wit/deps/cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    ("wit/deps/clocks.wit", include_str!("../../../../wit/deps/clocks.wit")),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    ("wit/deps/http.wit", include_str!("../../../../wit/deps/http.wit")),
    ("wit/deps/io.wit", include_str!("../../../../wit/deps/io.wit")),
    ("wit/deps/random.wit", include_str!("../../../../wit/deps/random.wit")),
    ("wit/deps/sockets.wit", include_str!("../../../../wit/deps/sockets.wit")),
];

/// The git URL the SDK is fetched from, unless `--sdk-path` names a local folder.
const SDK_GIT: &str = "https://example.invalid/powernode.git";

/// `powernode plugin new`.
pub fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    if args.lang == Lang::Rust {
        anyhow::ensure!(
            args.world.is_none(),
            "--world is for Python and JavaScript: a Rust step imports only the interfaces it calls"
        );
    } else {
        anyhow::ensure!(
            args.sdk_path.is_none(),
            "--sdk-path is for Rust projects: Python and JavaScript projects get the SDK's helper copied in"
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let empty = std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none());
    anyhow::ensure!(
        empty,
        "`{}` already exists and is not empty: give another folder with --dir",
        dir.display()
    );
    let files = project_files(&args)?;
    for (path, text) in &files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a file has a folder"))
            .and_then(|()| std::fs::write(&file, text))
            .with_context(|| format!("cannot write `{}`", file.display()))?;
    }
    println!(
        "wrote a {} step `{}` in {}:",
        args.lang.display_name(),
        args.name,
        dir.display()
    );
    for (path, _) in files.iter().filter(|(p, _)| !p.starts_with("wit/")) {
        println!("  {path}");
    }
    if args.lang != Lang::Rust {
        println!("  wit/ (the contract)");
    }
    println!("next: cd {} && powernode plugin build", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Every file of the project, by path in its folder.
fn project_files(args: &NewArgs) -> anyhow::Result<Vec<(String, String)>> {
    let world = (args.lang != Lang::Rust).then(|| args.world.unwrap_or_default());
    let project = Project {
        name: args.name.clone(),
        lang: args.lang,
        world: world.map(ProjectWorld::Packaged),
        wit: None,
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", &args.name)
            .replace("{{type_name}}", &type_name(&args.name))
            .replace("{{world}}", world.map_or("", World::wit_name))
    };
    let (test_command, part) = match args.lang {
        Lang::Rust => ("cargo test", include_str!("templates/rust/README.part")),
        Lang::Python => (
            "python3 -m unittest   # after building",
            include_str!("templates/python/README.part"),
        ),
        Lang::Js => (
            "node --test           # after building",
            include_str!("templates/js/README.part"),
        ),
    };
    let readme = include_str!("templates/README.md")
        .replace("{{lang_name}}", args.lang.display_name())
        .replace("{{test_command}}", test_command)
        .replace("{{files}}", part);
    let mut files = vec![
        (PROJECT_FILE.to_string(), project.to_toml()),
        ("README.md".into(), fill(&readme)),
        ("pipeline.yml".into(), fill(include_str!("templates/pipeline.yml"))),
    ];
    let own: &[(&str, &str)] = match args.lang {
        Lang::Rust => &[
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("templates/rust/lib.rs")),
            (".gitignore", include_str!("templates/rust/gitignore")),
        ],
        Lang::Python => &[
            ("app.py", include_str!("templates/python/app.py")),
            ("test_step.py", include_str!("templates/python/test_step.py")),
            (
                "powernode_step.py",
                include_str!("../../../../sdk/python/powernode_step.py"),
            ),
            (
                "powernode_step.pyi",
                include_str!("../../../../sdk/python/powernode_step.pyi"),
            ),
            (".gitignore", include_str!("templates/python/gitignore")),
        ],
        Lang::Js => &[
            ("step.js", include_str!("templates/js/step.js")),
            ("step.test.mjs", include_str!("templates/js/step.test.mjs")),
            (
                "powernode-step.js",
                include_str!("../../../../sdk/js/powernode-step.js"),
            ),
            (
                "powernode-step.d.ts",
                include_str!("../../../../sdk/js/powernode-step.d.ts"),
            ),
            ("wit.d.ts", include_str!("../../../../sdk/js/wit.d.ts")),
            ("jsconfig.json", include_str!("templates/js/jsconfig.json")),
            (".gitignore", include_str!("templates/js/gitignore")),
        ],
    };
    files.extend(own.iter().map(|(path, text)| (path.to_string(), fill(text))));
    if args.lang == Lang::Rust {
        let (comment, source) = sdk_source(args.sdk_path.as_deref())?;
        let manifest = files.iter_mut().find(|(p, _)| p == "Cargo.toml").expect("Cargo.toml");
        manifest.1 = manifest
            .1
            .replace("{{sdk_comment}}", &comment)
            .replace("{{sdk_source}}", &source);
    } else {
        files.extend(WIT.iter().map(|(path, text)| (path.to_string(), text.to_string())));
    }
    Ok(files)
}

/// Where the SDK comes from, and a comment saying so: by git, or `--sdk-path`'s folder.
fn sdk_source(sdk: Option<&Path>) -> anyhow::Result<(String, String)> {
    let Some(sdk) = sdk else {
        let comment = "# The SDK is not on crates.io: depend on it by git (put the URL you got Powernode from,\n\
                       # and a `tag` or `rev` to pin it).";
        return Ok((comment.into(), format!("git = \"{SDK_GIT}\"")));
    };
    let abs = std::fs::canonicalize(sdk).with_context(|| format!("--sdk-path `{}` does not exist", sdk.display()))?;
    anyhow::ensure!(
        abs.join("Cargo.toml").is_file() && abs.join("wit/step.wit").is_file(),
        "--sdk-path `{}` is not the SDK: give a Powernode checkout's `sdk/` folder",
        sdk.display()
    );
    // A path, not a `[patch]` of the git URL: cargo fetches a patched git source to resolve
    // a project without a lock file, and this option is for building offline.
    let comment = format!("# A local SDK (`--sdk-path`); elsewhere use `git = \"{SDK_GIT}\"` (and a `tag` or `rev`).");
    Ok((
        comment,
        format!("path = {}", toml::Value::String(abs.display().to_string())),
    ))
}

/// `my_step` as a type name: `MyStep`.
fn type_name(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("my_step"), "MyStep");
        assert_eq!(type_name("greet2"), "Greet2");
    }
}
