//! `powernode plugin new` and `powernode plugin build`: for each language a fresh project in
//! a temporary folder outside the repository is built with the real toolchain (cargo,
//! componentize-py, jco) and runs with `powernode step run`; its own test passes too.

use std::path::Path;
use std::process::{Command, Output};

use super::{output, text};

/// `scripts/setup-js-tools.sh`'s folder.
fn js_tools() -> std::path::PathBuf {
    std::env::var_os("POWERNODE_JS_TOOLS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/powernode-js-tools"))
}

/// `powernode ARGS` in `dir`, with `envs` set.
fn powernode_with(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_powernode"));
    cmd.args(args).current_dir(dir).env_remove("POWERNODE_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

/// `plugin new NAME --lang LANG` then `plugin build` in a fresh folder; the project's folder.
fn new_and_build(root: &Path, name: &str, new_args: &[&str], envs: &[(&str, &str)]) -> std::path::PathBuf {
    let mut args = vec!["plugin", "new", name];
    args.extend_from_slice(new_args);
    let made = powernode_with(&args, root, &[]);
    assert!(made.status.success(), "{}", text(&made));
    let project = root.join(name);
    let built = powernode_with(&["plugin", "build"], &project, envs);
    let said = text(&built);
    assert!(built.status.success(), "{said}");
    assert!(said.contains(&format!("built ./{name}.wasm")), "{said}");
    // The import list printed is the world's and no more: no `wasi:http` from jco's defaults.
    assert!(
        said.contains("  powernode:step/log@0.1.3\n  powernode:step/types@0.1.3\n"),
        "{said}"
    );
    assert!(!said.contains("wasi:http"), "{said}");
    project
}

/// `powernode step run NAME.wasm` in the project greets Ada, as the template's step does.
fn assert_step_runs(project: &Path, name: &str) {
    let wasm = format!("{name}.wasm");
    let out = powernode_with(&["step", "run", &wasm, "--config", r#"{"name": "Ada"}"#], project, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for expected in [
        "│ greeting Ada",
        &format!("✔ {name} succeeded"),
        "= hello, Ada",
        &format!("→ {name}.length = 3"),
    ] {
        assert!(said.contains(expected), "missing `{expected}` in:\n{said}");
    }
}

/// Runs `program args` in `dir` with `POWERNODE` set to this binary; panics with its output
/// unless it succeeds.
fn project_test(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("POWERNODE", env!("CARGO_BIN_EXE_powernode"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = output(&mut cmd);
    assert!(
        out.status.success(),
        "`{program} {}` failed:\n{}",
        args.join(" "),
        text(&out)
    );
}

#[test]
fn a_new_rust_step_builds_runs_and_passes_its_tests_outside_the_repository() {
    let root = tempfile::tempdir().unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    // Offline (the SDK is a path; its dependencies are in cargo's cache), and into the target
    // directory the suite uses (else one kept under this test's tmp dir), so a rerun is warm.
    let target =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/plugin-kit", env!("CARGO_TARGET_TMPDIR")));
    let offline = [("CARGO_NET_OFFLINE", "true"), ("CARGO_TARGET_DIR", target.as_str())];
    let args = ["--lang", "rust", "--sdk-path", sdk.to_str().unwrap()];
    let project = new_and_build(root.path(), "kit_rust", &args, &offline);
    assert_step_runs(&project, "kit_rust");
    project_test(&project, "cargo", &["test"], &offline);
    // The sample pipeline is valid against the built step's config schema.
    let config = root.path().join("powernode.toml");
    std::fs::write(&config, format!("plugins_dir = {:?}\n", project.display().to_string())).unwrap();
    let checked = powernode_with(
        &["validate", "pipeline.yml", "-c", config.to_str().unwrap()],
        &project,
        &[],
    );
    assert!(checked.status.success(), "{}", text(&checked));
}

#[test]
fn a_new_python_step_builds_runs_and_passes_its_test_outside_the_repository() {
    let root = tempfile::tempdir().unwrap();
    let project = new_and_build(root.path(), "kit_python", &["--lang", "python"], &[]);
    assert!(project.join("wit/step.wit").is_file() && project.join("powernode_step.pyi").is_file());
    assert_step_runs(&project, "kit_python");
    project_test(&project, "python3", &["-m", "unittest", "-v"], &[]);
}

#[test]
fn a_new_js_step_builds_runs_and_passes_its_test_outside_the_repository() {
    let root = tempfile::tempdir().unwrap();
    let project = new_and_build(root.path(), "kit_js", &["--lang", "js"], &[]);
    assert!(project.join("wit.d.ts").is_file() && project.join("powernode-step.d.ts").is_file());
    assert_step_runs(&project, "kit_js");
    project_test(&project, "node", &["--test"], &[]);
    // The step type-checks against the helper's and the WIT's declarations (TypeScript comes
    // with jco in scripts/setup-js-tools.sh's folder).
    let tsc = js_tools().join("node_modules/.bin/tsc");
    project_test(&project, tsc.to_str().unwrap(), &["-p", "jsconfig.json"], &[]);
}

#[test]
fn plugin_new_and_build_refuse_bad_input_saying_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let cases: [(&[&str], &str); 4] = [
        (
            &["plugin", "new", "My-Step", "--lang", "js"],
            "`My-Step` cannot be a step type",
        ),
        (
            &["plugin", "new", "x", "--lang", "rust", "--world", "full"],
            "--world is for Python and JavaScript",
        ),
        (
            &["plugin", "new", "x", "--lang", "python", "--sdk-path", "."],
            "--sdk-path is for Rust",
        ),
        (
            &["plugin", "build"],
            "made by `powernode plugin new NAME --lang rust|python|js`",
        ),
    ];
    for (args, expected) in cases {
        let out = powernode_with(args, dir, &[]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: missing `{expected}` in:\n{said}");
    }
    let made = powernode_with(&["plugin", "new", "twice", "--lang", "js"], dir, &[]);
    assert!(made.status.success(), "{}", text(&made));
    let again = text(&powernode_with(
        &["plugin", "new", "twice", "--lang", "python"],
        dir,
        &[],
    ));
    assert!(again.contains("`twice` already exists and is not empty"), "{again}");
}

#[test]
fn plugin_build_names_a_missing_tool_and_how_to_install_it() {
    let root = tempfile::tempdir().unwrap();
    let nothing = tempfile::tempdir().unwrap();
    let empty_path = [
        ("PATH", nothing.path().to_str().unwrap()),
        ("POWERNODE_JS_TOOLS_DIR", nothing.path().to_str().unwrap()),
    ];
    for (lang, expected) in [
        ("rust", "`cargo` is not installed: install Rust from https://rustup.rs"),
        (
            "python",
            "`componentize-py` is not installed (or not on PATH): install it with `pip install componentize-py",
        ),
        (
            "js",
            "`jco` is not installed (or not on PATH): install it with `scripts/setup-js-tools.sh`",
        ),
    ] {
        let name = format!("no_{lang}");
        let made = powernode_with(&["plugin", "new", &name, "--lang", lang], root.path(), &[]);
        assert!(made.status.success(), "{}", text(&made));
        let out = powernode_with(&["plugin", "build", &name], root.path(), &empty_path);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{lang}: {said}");
        assert!(said.contains(expected), "{lang}: missing `{expected}` in:\n{said}");
    }
}

#[test]
fn plugin_build_builds_a_world_of_your_own_importing_only_what_it_names() {
    let root = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let world = "package my:steps;\n\nworld counter {\n    import powernode:step/log@0.1.3;\n    \
                 import powernode:step/kv@0.1.3;\n    export powernode:step/handler@0.1.3;\n}\n";
    for (lang, source, example) in [
        ("python", "app.py", "sdk/python/examples/forge/app.py"),
        ("js", "step.js", "sdk/js/examples/forge/step.js"),
    ] {
        let made = powernode_with(
            &["plugin", "new", "visits", "--lang", lang, "--dir", lang],
            root.path(),
            &[],
        );
        assert!(made.status.success(), "{}", text(&made));
        let project = root.path().join(lang);
        // README's "Your own world": the world in a folder of its own, Powernode's WIT in deps/.
        let own = project.join("my-wit/deps");
        std::fs::create_dir_all(&own).unwrap();
        for entry in std::fs::read_dir(project.join("wit/deps")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), own.join(entry.file_name())).unwrap();
        }
        std::fs::copy(project.join("wit/step.wit"), own.join("powernode-step.wit")).unwrap();
        std::fs::write(project.join("my-wit/world.wit"), world).unwrap();
        let step = std::fs::read_to_string(repo.join(example)).unwrap();
        std::fs::write(
            project.join(source),
            step.replace("../../powernode-step.js", "./powernode-step.js"),
        )
        .unwrap();
        let manifest =
            format!("name = \"visits\"\nlang = \"{lang}\"\nworld = \"my:steps/counter\"\nwit = \"my-wit\"\n");
        std::fs::write(project.join("powernode-step.toml"), manifest).unwrap();
        let built = powernode_with(&["plugin", "build"], &project, &[]);
        let said = text(&built);
        assert!(built.status.success(), "{lang}: {said}");
        let stdout = String::from_utf8_lossy(&built.stdout);
        let imports: Vec<&str> = stdout
            .lines()
            .skip_while(|l| !l.starts_with("built "))
            .skip(1)
            .map(str::trim)
            .collect();
        let mut ours = imports.clone();
        ours.sort();
        assert_eq!(
            ours,
            [
                "powernode:step/kv@0.1.3",
                "powernode:step/log@0.1.3",
                "powernode:step/types@0.1.3"
            ],
            "{lang}: {said}"
        );
    }
}
