//! Stack-file mistakes give precise messages: the file, the line and column, and what
//! to do. Each case is a small stack with the mistake on a known line.

use std::collections::BTreeMap;

use kha::install::stack::{self, Source, StackError};

fn parse(text: &str) -> Result<stack::Stack, StackError> {
    stack::parse(
        Source {
            name: "stack.toml".into(),
            text: text.into(),
            dir: None,
        },
        &BTreeMap::new(),
    )
}

fn error(text: &str) -> StackError {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

const HEAD: &str = "[settings]\nhost = \"lb.example\"\n";

fn component(name: &str, deps: &str) -> String {
    format!(
        "[components.{name}]\nrepo = \"https://charts.example\"\nchart = \"{name}\"\nversion = \"1.0.0\"\nnamespace = \"{name}\"\ndepends_on = [{deps}]\n"
    )
}

#[test]
fn bad_toml_names_the_line_and_column() {
    let text = format!("{HEAD}[components.cilium\nrepo = \"x\"\n");
    let e = error(&text);
    assert_eq!((e.file.as_str(), e.line), ("stack.toml", 3), "{e}");
    assert!(e.to_string().starts_with("stack.toml:3:"), "{e}");
}

#[test]
fn an_unknown_dependency_names_its_line_and_the_known_components() {
    let text = format!(
        "{HEAD}{}{}",
        component("cilium", ""),
        component("velero", "\"cilium\", \"ceph\"")
    );
    let e = error(&text);
    assert_eq!(e.line, 14, "{e}");
    assert_eq!(e.column, 25, "{e}");
    assert_eq!(
        e.message,
        "component `velero` depends on `ceph`, which is not in the stack (components: cilium, velero)"
    );
}

#[test]
fn a_cycle_names_the_entry_that_closes_it() {
    let text = format!(
        "{HEAD}{}{}{}",
        component("cilium", ""),
        component("operator", "\"cilium\", \"cluster\""),
        component("cluster", "\"operator\"")
    );
    let e = error(&text);
    assert!(e.message.starts_with("dependency cycle: "), "{}", e.message);
    assert!(
        e.message.contains("operator -> cluster -> operator")
            || e.message.contains("cluster -> operator -> cluster"),
        "{}",
        e.message
    );
    // The entry in `cluster` (line 20) or `operator` (line 14) that closes it.
    assert!(matches!(e.line, 14 | 20), "{e}");
}

#[test]
fn a_missing_value_names_the_placeholder_line_and_the_setting() {
    let text = format!(
        "{HEAD}{}values = {{ k8sServiceHost = \"${{host}}\", bucket = \"s3://${{bucket}}/x\" }}\n",
        component("cilium", "")
    );
    let e = error(&text);
    assert_eq!(e.line, 9, "{e}");
    assert_eq!(
        e.message,
        "missing value: `${bucket}` in component `cilium` has no value; set `bucket` in [settings] or pass --set bucket=VALUE"
    );
    // An empty setting is missing too.
    let empty = text
        .replace("host = \"lb.example\"", "host = \"\"")
        .replace("${bucket}", "b");
    assert!(error(&empty).message.contains("`${host}`"));
}

#[test]
fn a_misspelt_field_is_named_with_its_line() {
    let text = format!("{HEAD}{}", component("cilium", "")).replace("version =", "verison =");
    let e = error(&text);
    assert_eq!(e.line, 6, "{e}");
    assert!(
        e.message.contains("unknown field `verison`"),
        "{}",
        e.message
    );
}

#[test]
fn an_unknown_readiness_check_and_need_are_named() {
    let text = format!(
        "{HEAD}{}ready = [{{ statefulset = \"prometheus\" }}]\n",
        component("cilium", "")
    );
    let e = error(&text);
    assert_eq!(e.line, 9, "{e}");
    assert!(
        e.message
            .contains("component `cilium`: unknown readiness check `statefulset`"),
        "{}",
        e.message
    );
    let text = format!("{HEAD}{}needs = [\"disks\"]\n", component("cilium", ""));
    let e = error(&text);
    assert_eq!(e.line, 9, "{e}");
    assert!(e.message.contains("unknown need `disks`"), "{}", e.message);
}

#[test]
fn a_chart_without_a_version_or_a_component_without_namespace_is_named() {
    let text = format!("{HEAD}{}", component("cilium", "")).replace("version = \"1.0.0\"\n", "");
    let e = error(&text);
    assert_eq!(e.line, 3, "{e}");
    assert!(
        e.message.contains("`repo`, `chart` and `version` together"),
        "{}",
        e.message
    );
    let text = format!("{HEAD}{}", component("cilium", "")).replace("namespace = \"cilium\"\n", "");
    let e = error(&text);
    assert!(e.message.contains("missing field `namespace`"), "{e}");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn a_chart_timeout_beyond_the_command_limit_is_named() {
    let text = format!("{HEAD}{}timeout = \"15m\"\n", component("cilium", ""));
    let e = error(&text);
    assert_eq!(e.line, 3, "{e}");
    assert!(
        e.message
            .contains("timeout 15m is longer than kha lets a command run (570 s)"),
        "{}",
        e.message
    );
    let text = format!("{HEAD}{}timeout = \"soon\"\n", component("cilium", ""));
    assert!(error(&text).message.contains("is not a duration"));
}

#[test]
fn a_manifest_without_a_name_is_named() {
    let text = format!(
        "{HEAD}{}[[components.cilium.manifests]]\napiVersion = \"v1\"\nkind = \"ConfigMap\"\nmetadata = {{ namespace = \"x\" }}\n",
        component("cilium", "")
    );
    let e = error(&text);
    // The manifest's `[[...manifests]]` header.
    assert_eq!(e.line, 9, "{e}");
    assert_eq!(e.message, "a manifest needs `metadata.name`");
}

#[test]
fn the_builtin_stack_orders_cni_first_and_policy_last() {
    let mut set = BTreeMap::new();
    set.insert("api_server_host".to_string(), "10.0.0.100".to_string());
    let stack = stack::parse(Source::embedded(), &set).unwrap();
    let order: Vec<&str> = kha::install::graph::order(&stack)
        .unwrap()
        .into_iter()
        .map(|i| stack.components[i].name.as_str())
        .collect();
    assert_eq!(order.first(), Some(&"cilium"));
    let at = |n: &str| order.iter().position(|o| *o == n).unwrap();
    assert!(at("rook-ceph") < at("ceph-cluster"));
    assert!(at("ceph-cluster") < at("velero"));
    assert!(at("kube-prometheus-stack") < at("rook-ceph"));
    assert_eq!(&order[order.len() - 2..], ["gatekeeper", "kyverno"]);
}
