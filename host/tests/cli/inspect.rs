//! `powernode plugin inspect` and `plugin list` give the same verdict on a file, and
//! inspecting writes nothing.

use super::common::python_step;
use super::step_run::entries;
use super::{powernode, text};

#[test]
fn inspect_writes_nothing_and_agrees_with_list_on_a_misnamed_file() {
    let build = tempfile::tempdir().unwrap();
    let wasm = python_step(build.path(), "hello_python");
    let dir = tempfile::tempdir().unwrap();
    let out = powernode(&["plugin", "inspect", wasm.to_str().unwrap()], dir.path());
    let fine = text(&out);
    assert_eq!(out.status.code(), Some(0), "{fine}");
    assert!(fine.contains("step type:  hello_python"), "{fine}");
    assert!(fine.contains("loadable: yes"), "{fine}");
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "inspect wrote into the current directory"
    );

    // Installed under another name than its describe() name: both refuse it, for that reason.
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let misnamed = dir.path().join("plugins/greeter.wasm");
    std::fs::copy(&wasm, &misnamed).unwrap();
    let out = powernode(&["plugin", "inspect", misnamed.to_str().unwrap()], dir.path());
    let inspected = text(&out);
    assert_eq!(out.status.code(), Some(1), "{inspected}");
    assert!(inspected.contains("loadable: no"), "{inspected}");
    assert!(
        inspected.contains("rename the file to `hello_python.wasm`"),
        "{inspected}"
    );
    let out = powernode(&["plugin", "list"], dir.path());
    let listed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{listed}");
    assert!(listed.contains("greeter              REFUSED"), "{listed}");
    assert!(listed.contains("rename the file to `hello_python.wasm`"), "{listed}");
}
