//! `schema/wharf-project.schema.json` is generated from the normalized model (`Project`, via
//! schemars). This test fails when the committed file is stale; regenerate it with
//! `WHARF_UPDATE_SCHEMA=1 cargo test --test integration schema`.

use std::path::Path;

use wharf::compose::Project;

#[test]
fn generated_schema_is_up_to_date() {
    let schema = schemars::schema_for!(Project);
    let text = serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/wharf-project.schema.json");
    if std::env::var_os("WHARF_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &text).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is stale: regenerate it with WHARF_UPDATE_SCHEMA=1 cargo test --test integration schema",
        path.display()
    );
}

#[test]
fn generated_schema_describes_the_model() {
    let schema = serde_json::to_value(schemars::schema_for!(Project)).expect("json");
    let svc = &schema["$defs"]["Service"]["properties"];
    for field in [
        "image",
        "ports",
        "volumes",
        "depends_on",
        "healthcheck",
        "environment",
    ] {
        assert!(svc.get(field).is_some(), "Service schema lacks {field}");
    }
}
