//! Plan golden tests: scenarios as a user meets them, each a Compose file before and after,
//! the live state as the first `up` would have left it, and the plan in its one-line form.

use super::*;

fn project(yaml: &str) -> Project {
    crate::compose::testing::project(yaml, "shop")
}

/// `yaml` loaded with `--profile` for each of `profiles`.
fn project_with_profiles(yaml: &str, profiles: &[&str]) -> Project {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("compose.yaml"), yaml).expect("writing compose.yaml");
    let options = crate::compose::LoadOptions {
        files: vec![dir.path().join("compose.yaml")],
        project_name: Some("shop".into()),
        profiles: profiles.iter().map(|p| p.to_string()).collect(),
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    };
    crate::compose::load(
        &options,
        &crate::compose::Environment::default(),
        crate::compose::NormalizeOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
    .project
}

/// What a completed `up` of `project` leaves (see [`up`]).
fn up_project(project: &Project) -> Live {
    live_of(&desired(project))
}

/// What a completed `up` of `yaml` leaves: every replica running, networks and volumes made.
fn up(yaml: &str) -> Live {
    live_of(&desired(&project(yaml)))
}

fn live_of(d: &Desired) -> Live {
    let mut live = Live::default();
    for svc in d.services.values() {
        for replica in 1..=svc.replicas {
            live.containers.push(LiveContainer {
                id: format!("{:0>64}", format!("{}{replica}", svc.name.len())),
                name: svc.container_name(&d.project, replica),
                service: svc.name.clone(),
                replica,
                hash: svc.hash.clone(),
                image_digest: Some(format!("sha256:{}", svc.image)),
                running: true,
                exit_code: None,
                networks: svc.networks.clone(),
                config: Some(svc.config.clone()),
                one_off: false,
            });
        }
        live.images
            .insert(svc.image.clone(), format!("sha256:{}", svc.image));
    }
    for (k, n) in d.networks.iter().filter(|(_, n)| !n.external) {
        live.networks.insert(
            k.clone(),
            LiveObject {
                name: n.name.clone(),
                hash: n.hash.clone(),
            },
        );
    }
    for (k, v) in d.volumes.iter().filter(|(_, v)| !v.external) {
        live.volumes.insert(
            k.clone(),
            LiveObject {
                name: v.name.clone(),
                hash: v.hash.clone(),
            },
        );
    }
    live
}

fn plan(yaml: &str, live: &Live, options: &Options) -> String {
    let p = diff(&desired(&project(yaml)), live, options);
    if p.is_empty() && p.warnings.is_empty() {
        "(nothing to do)\n".into()
    } else {
        p.to_string()
    }
}

const THREE_TIER: &str = r#"
services:
  web:
    image: web:1
    ports: ["8080:80"]
    depends_on: [api]
  api:
    image: api:1
    environment: {MODE: prod}
    depends_on:
      db: {condition: service_healthy}
  db:
    image: db:1
    volumes: [data:/var/lib/db]
    networks: [back]
networks:
  back: {}
volumes:
  data: {}
"#;

fn with(yaml: &str, from: &str, to: &str) -> String {
    assert!(yaml.contains(from), "{from}");
    yaml.replacen(from, to, 1)
}

#[test]
fn a_new_project_is_created_in_dependency_order() {
    insta::assert_snapshot!(plan(THREE_TIER, &Live::default(), &Options::default()), @r"
    [] -> #1 volume:shop_data, CreateVolume, not found
    [] -> #2 network:shop_back, CreateNetwork, not found
    [] -> #3 network:shop_default, CreateNetwork, not found
    [1,2] -> #4 container:shop-db-1, CreateContainer, not found
    [4] -> #5 container:shop-db-1, StartContainer, created
    [3,5] -> #6 container:shop-api-1, CreateContainer, not found
    [6] -> #7 container:shop-api-1, StartContainer, created
    [3,7] -> #8 container:shop-web-1, CreateContainer, not found
    [8] -> #9 container:shop-web-1, StartContainer, created
    ");
}

#[test]
fn nothing_changed_is_nothing_to_do() {
    insta::assert_snapshot!(plan(THREE_TIER, &up(THREE_TIER), &Options::default()), @"(nothing to do)");
}

#[test]
fn one_environment_variable_recreates_only_that_service_create_before_destroy() {
    let after = with(THREE_TIER, "MODE: prod", "MODE: dev");
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @r"
    [] -> #1 container:000000000000_shop-api-1, CreateContainer, config hash diverged: environment.MODE
    [1] -> #2 container:shop-api-1, StopContainer, replaced
    [2] -> #3 container:shop-api-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-api-1, RenameContainer, to shop-api-1
    [4] -> #5 container:shop-api-1, StartContainer, recreated
    ");
}

#[test]
fn a_new_image_digest_recreates() {
    let mut live = up(THREE_TIER);
    live.images.insert("db:1".into(), "sha256:newer".into());
    insta::assert_snapshot!(plan(THREE_TIER, &live, &Options::default()), @r"
    [] -> #1 container:000000000000_shop-db-1, CreateContainer, image changed
    [1] -> #2 container:shop-db-1, StopContainer, replaced
    [2] -> #3 container:shop-db-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-db-1, RenameContainer, to shop-db-1
    [4] -> #5 container:shop-db-1, StartContainer, recreated
    ");
}

#[test]
fn scaling_up_and_down_keeps_the_lowest_replicas_and_recreates_nothing() {
    let live = up(THREE_TIER);
    let mut options = Options::default();
    options.scale.insert("web".into(), 3);
    insta::assert_snapshot!(plan(THREE_TIER, &live, &options), @r"
    [] -> #1 container:shop-web-2, CreateContainer, not found
    [1] -> #2 container:shop-web-2, StartContainer, created
    [] -> #3 container:shop-web-3, CreateContainer, not found
    [3] -> #4 container:shop-web-3, StartContainer, created
    ");
    let three = with(THREE_TIER, "image: web:1", "image: web:1\n    scale: 3");
    let mut options = Options::default();
    options.scale.insert("web".into(), 1);
    insta::assert_snapshot!(plan(&three, &up(&three), &options), @r"
    [] -> #1 container:shop-web-3, StopContainer, scale down
    [1] -> #2 container:shop-web-3, RemoveContainer, scale down
    [] -> #3 container:shop-web-2, StopContainer, scale down
    [3] -> #4 container:shop-web-2, RemoveContainer, scale down
    ");
}

#[test]
fn a_changed_network_is_recreated_and_its_containers_reconnected() {
    let after = with(THREE_TIER, "  back: {}", "  back: {internal: true}");
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @r"
    [] -> #1 container:shop-db-1, DisconnectNetwork, network back changed
    [1] -> #2 network:shop_back, RemoveNetwork, config changed
    [2] -> #3 network:shop_back, CreateNetwork, config changed
    [3] -> #4 container:shop-db-1, ConnectNetwork, network back recreated
    ");
}

#[test]
fn a_changed_volume_is_kept_with_a_warning() {
    let after = with(THREE_TIER, "  data: {}", "  data: {labels: {tier: db}}");
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @"warning: volume \"shop_data\" exists with another configuration; it is kept (remove it with `down -v` to recreate it)");
}

#[test]
fn orphans_are_reported_and_removed_only_when_asked() {
    let after = THREE_TIER.replace(
        "  web:\n    image: web:1\n    ports: [\"8080:80\"]\n    depends_on: [api]\n",
        "",
    );
    let live = up(THREE_TIER);
    insta::assert_snapshot!(plan(&after, &live, &Options::default()), @"warning: found orphan containers (shop-web-1) for this project; remove them with --remove-orphans");
    let options = Options {
        remove_orphans: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(&after, &live, &options), @r"
    [] -> #1 container:shop-web-1, StopContainer, orphaned
    [1] -> #2 container:shop-web-1, RemoveContainer, orphaned
    ");
}

#[test]
fn force_and_no_recreate() {
    let live = up(THREE_TIER);
    let force = Options {
        force_recreate: true,
        ..Options::default()
    };
    let text = plan(THREE_TIER, &live, &force);
    assert_eq!(
        text.matches("CreateContainer, --force-recreate").count(),
        3,
        "{text}"
    );
    let after = with(THREE_TIER, "MODE: prod", "MODE: dev");
    let keep = Options {
        no_recreate: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(&after, &live, &keep), @"(nothing to do)");
}

#[test]
fn stopped_containers_are_started_and_no_start_only_creates() {
    let mut live = up(THREE_TIER);
    for c in &mut live.containers {
        c.running = c.service != "db";
    }
    insta::assert_snapshot!(plan(THREE_TIER, &live, &Options::default()), @"[] -> #1 container:shop-db-1, StartContainer, not running");
    let options = Options {
        no_start: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(THREE_TIER, &Live::default(), &options), @r"
    [] -> #1 volume:shop_data, CreateVolume, not found
    [] -> #2 network:shop_back, CreateNetwork, not found
    [] -> #3 network:shop_default, CreateNetwork, not found
    [1,2] -> #4 container:shop-db-1, CreateContainer, not found
    [3,4] -> #5 container:shop-api-1, CreateContainer, not found
    [3,5] -> #6 container:shop-web-1, CreateContainer, not found
    ");
}

#[test]
fn changed_fields_name_nested_paths() {
    let old = serde_json::json!({"environment": {"A": "1", "B": "2"}, "image": "x", "ports": [1]});
    let new = serde_json::json!({"environment": {"A": "1", "C": "3"}, "image": "y", "ports": [1]});
    assert_eq!(
        changed_fields(&old, &new),
        ["environment.B", "environment.C", "image"]
    );
    assert!(changed_fields(&old, &old).is_empty());
}

#[test]
fn a_dependency_with_restart_true_restarts_its_dependent() {
    let yaml = with(
        THREE_TIER,
        "      db: {condition: service_healthy}",
        "      db: {condition: service_healthy, restart: true}",
    );
    let after = with(&yaml, "image: db:1", "image: db:2");
    insta::assert_snapshot!(plan(&after, &up(&yaml), &Options::default()), @r"
    [] -> #1 container:000000000000_shop-db-1, CreateContainer, config hash diverged: image
    [1] -> #2 container:shop-db-1, StopContainer, replaced
    [2] -> #3 container:shop-db-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-db-1, RenameContainer, to shop-db-1
    [4] -> #5 container:shop-db-1, StartContainer, recreated
    [5] -> #6 container:shop-api-1, StopContainer, dependency db recreated
    [6] -> #7 container:shop-api-1, StartContainer, dependency db recreated
    ");
    // Without restart: true, the dependent is left alone.
    let plain = with(THREE_TIER, "image: db:1", "image: db:2");
    let text = plan(&plain, &up(THREE_TIER), &Options::default());
    assert!(!text.contains("shop-api-1"), "{text}");
}

#[test]
fn a_service_profiled_out_is_an_orphan() {
    let after = with(
        THREE_TIER,
        "    image: web:1\n",
        "    image: web:1\n    profiles: [front]\n",
    );
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @"warning: found orphan containers (shop-web-1) for this project; remove them with --remove-orphans");
}

#[test]
fn a_new_service_and_a_new_network_join_a_running_project() {
    let after = with(
        THREE_TIER,
        "networks:\n  back: {}",
        "  cache:\n    image: cache:1\n    networks: [side]\nnetworks:\n  back: {}\n  side: {}",
    );
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @r"
    [] -> #1 network:shop_side, CreateNetwork, not found
    [1] -> #2 container:shop-cache-1, CreateContainer, not found
    [2] -> #3 container:shop-cache-1, StartContainer, created
    ");
}

#[test]
fn a_published_port_change_recreates_with_the_field_named() {
    let after = with(THREE_TIER, "8080:80", "8081:80");
    let text = plan(&after, &up(THREE_TIER), &Options::default());
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("config hash diverged: ports"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5, "{text}");
}

#[test]
fn an_external_network_is_never_created_or_removed() {
    let yaml = with(THREE_TIER, "  back: {}", "  back: {external: true}");
    let text = plan(&yaml, &Live::default(), &Options::default());
    assert!(
        !text.contains("network:shop_back") && !text.contains("network:back"),
        "{text}"
    );
    assert!(text.contains("CreateNetwork"), "{text}");
}

#[test]
fn down_stops_dependents_first_then_removes_networks_and_asked_volumes() {
    let d = desired(&project(THREE_TIER));
    let mut live = up(THREE_TIER);
    live.containers
        .iter_mut()
        .for_each(|c| c.running = c.service != "web");
    insta::assert_snapshot!(teardown(Some(&d), &live, &["shop_data".to_string()]).to_string(), @r"
    [] -> #1 container:shop-web-1, RemoveContainer, down
    [] -> #2 container:shop-api-1, StopContainer, down
    [2] -> #3 container:shop-api-1, RemoveContainer, down
    [2] -> #4 container:shop-db-1, StopContainer, down
    [4] -> #5 container:shop-db-1, RemoveContainer, down
    [1,3,5] -> #6 network:shop_back, RemoveNetwork, down
    [1,3,5] -> #7 network:shop_default, RemoveNetwork, down
    [1,3,5] -> #8 volume:shop_data, RemoveVolume, down -v
    ");
    // Without the Compose file: everything at once, networks after containers.
    let text = teardown(None, &live, &[]).to_string();
    assert!(
        text.starts_with("[] -> #1 container:shop-api-1, StopContainer"),
        "{text}"
    );
    assert!(!text.contains("RemoveVolume"), "{text}");
}

#[test]
fn a_lost_replica_is_recreated_alone() {
    let three = with(THREE_TIER, "image: web:1", "image: web:1\n    scale: 3");
    let mut live = up(&three);
    live.containers.retain(|c| c.name != "shop-web-2");
    insta::assert_snapshot!(plan(&three, &live, &Options::default()), @r"
    [] -> #1 container:shop-web-2, CreateContainer, not found
    [1] -> #2 container:shop-web-2, StartContainer, created
    ");
}

#[test]
fn replicas_raised_in_the_file_add_containers_without_recreating() {
    let two = with(
        THREE_TIER,
        "image: web:1",
        "image: web:1\n    deploy: {replicas: 2}",
    );
    let text = plan(&two, &up(THREE_TIER), &Options::default());
    insta::assert_snapshot!(text, @r"
    [] -> #1 container:shop-web-2, CreateContainer, not found
    [1] -> #2 container:shop-web-2, StartContainer, created
    ");
}

#[test]
fn a_change_to_a_scaled_service_recreates_every_replica() {
    let two = with(THREE_TIER, "image: web:1", "image: web:1\n    scale: 2");
    let after = with(&two, "8080:80", "80");
    let text = plan(&after, &up(&two), &Options::default());
    assert_eq!(text.matches("RenameContainer").count(), 2, "{text}");
    assert!(
        text.contains("to shop-web-1") && text.contains("to shop-web-2"),
        "{text}"
    );
}

#[test]
fn a_container_without_a_recorded_config_still_says_why() {
    let mut live = up(THREE_TIER);
    for c in &mut live.containers {
        c.config = None;
    }
    let after = with(THREE_TIER, "MODE: prod", "MODE: dev");
    let text = plan(&after, &live, &Options::default());
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("CreateContainer, config hash diverged"),
        "{text}"
    );
}

#[test]
fn a_new_volume_is_created_before_the_service_that_mounts_it() {
    let after = with(
        THREE_TIER,
        "    volumes: [data:/var/lib/db]",
        "    volumes: [data:/var/lib/db, logs:/var/log]",
    )
    .replace("volumes:\n  data: {}", "volumes:\n  data: {}\n  logs: {}");
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @r"
    [] -> #1 volume:shop_logs, CreateVolume, not found
    [1] -> #2 container:000000000000_shop-db-1, CreateContainer, config hash diverged: volumes
    [2] -> #3 container:shop-db-1, StopContainer, replaced
    [3] -> #4 container:shop-db-1, RemoveContainer, replaced
    [4] -> #5 container:000000000000_shop-db-1, RenameContainer, to shop-db-1
    [5] -> #6 container:shop-db-1, StartContainer, recreated
    ");
}

#[test]
fn a_completed_one_shot_job_is_not_run_again_but_a_stopped_service_is_started() {
    let yaml = "services:\n  migrate:\n    image: busybox\n  api:\n    image: busybox\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n  worker:\n    image: busybox\n";
    let mut live = up(yaml);
    for c in &mut live.containers {
        c.running = false;
        c.exit_code = Some(0);
    }
    // api is stopped (exit 0 too): a service, not a job, so it is started again.
    insta::assert_snapshot!(plan(yaml, &live, &Options::default()), @r"
    [] -> #1 container:shop-api-1, StartContainer, not running
    [] -> #2 container:shop-worker-1, StartContainer, not running
    ");
    // A job that failed runs again.
    for c in live
        .containers
        .iter_mut()
        .filter(|c| c.service == "migrate")
    {
        c.exit_code = Some(1);
    }
    assert!(plan(yaml, &live, &Options::default()).contains("shop-migrate-1, StartContainer"));
    // With a restart policy it is no job: it is started.
    let restarting = yaml.replace(
        "  migrate:\n    image: busybox\n",
        "  migrate:\n    image: busybox\n    restart: always\n",
    );
    assert!(!desired(&project(&restarting)).services["migrate"].one_shot);
}

fn options(services: &[&str]) -> Options {
    Options {
        services: services.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    }
}

#[test]
fn up_a_service_pulls_in_its_dependencies_and_nothing_else() {
    insta::assert_snapshot!(plan(THREE_TIER, &Live::default(), &options(&["api"])), @r"
    [] -> #1 volume:shop_data, CreateVolume, not found
    [] -> #2 network:shop_back, CreateNetwork, not found
    [] -> #3 network:shop_default, CreateNetwork, not found
    [1,2] -> #4 container:shop-db-1, CreateContainer, not found
    [4] -> #5 container:shop-db-1, StartContainer, created
    [3,5] -> #6 container:shop-api-1, CreateContainer, not found
    [6] -> #7 container:shop-api-1, StartContainer, created
    ");
}

#[test]
fn up_a_service_with_no_deps_plans_that_service_alone() {
    let no_deps = Options {
        no_deps: true,
        ..options(&["api"])
    };
    insta::assert_snapshot!(plan(THREE_TIER, &Live::default(), &no_deps), @r"
    [] -> #1 network:shop_default, CreateNetwork, not found
    [1] -> #2 container:shop-api-1, CreateContainer, not found
    [2] -> #3 container:shop-api-1, StartContainer, created
    ");
}

#[test]
fn up_a_service_leaves_the_others_changed_or_not() {
    // web and db changed too, but only api is asked for (without its dependencies).
    let after = with(THREE_TIER, "MODE: prod", "MODE: dev")
        .replace("image: web:1", "image: web:2")
        .replace("image: db:1", "image: db:2");
    let no_deps = Options {
        no_deps: true,
        ..options(&["api"])
    };
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &no_deps), @r"
    [] -> #1 container:000000000000_shop-api-1, CreateContainer, config hash diverged: environment.MODE
    [1] -> #2 container:shop-api-1, StopContainer, replaced
    [2] -> #3 container:shop-api-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-api-1, RenameContainer, to shop-api-1
    [4] -> #5 container:shop-api-1, StartContainer, recreated
    ");
}

#[test]
fn force_recreate_recreates_the_targeted_services_not_their_dependencies() {
    let force = Options {
        force_recreate: true,
        ..options(&["api"])
    };
    insta::assert_snapshot!(plan(THREE_TIER, &up(THREE_TIER), &force), @r"
    [] -> #1 container:000000000000_shop-api-1, CreateContainer, --force-recreate
    [1] -> #2 container:shop-api-1, StopContainer, replaced
    [2] -> #3 container:shop-api-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-api-1, RenameContainer, to shop-api-1
    [4] -> #5 container:shop-api-1, StartContainer, recreated
    ");
}

#[test]
fn no_recreate_keeps_a_changed_container_and_still_starts_a_stopped_one() {
    let after = with(THREE_TIER, "image: db:1", "image: db:2");
    let mut live = up(THREE_TIER);
    live.containers
        .iter_mut()
        .for_each(|c| c.running = c.service != "db");
    let keep = Options {
        no_recreate: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(&after, &live, &keep), @"[] -> #1 container:shop-db-1, StartContainer, not running");
}

#[test]
fn always_recreate_deps_recreates_the_dependencies_of_the_named_service() {
    let deps = Options {
        always_recreate_deps: true,
        ..options(&["api"])
    };
    insta::assert_snapshot!(plan(THREE_TIER, &up(THREE_TIER), &deps), @r"
    [] -> #1 container:000000000000_shop-db-1, CreateContainer, --always-recreate-deps
    [1] -> #2 container:shop-db-1, StopContainer, replaced
    [2] -> #3 container:shop-db-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-db-1, RenameContainer, to shop-db-1
    [4] -> #5 container:shop-db-1, StartContainer, recreated
    ");
    // With no service named every service is targeted: nothing is only a dependency.
    let all = Options {
        always_recreate_deps: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(THREE_TIER, &up(THREE_TIER), &all), @"(nothing to do)");
}

const ANONYMOUS: &str = r#"
services:
  web:
    image: web:1
    volumes: [/cache]
  api:
    image: api:1
    environment: {MODE: prod}
"#;

#[test]
fn renew_anon_volumes_recreates_containers_that_have_some() {
    let renew = Options {
        renew_anon_volumes: true,
        ..Options::default()
    };
    let d = desired(&project(ANONYMOUS));
    assert!(d.services["web"].anonymous_volumes);
    assert!(!d.services["api"].anonymous_volumes);
    insta::assert_snapshot!(plan(ANONYMOUS, &up(ANONYMOUS), &renew), @r"
    [] -> #1 container:000000000000_shop-web-1, CreateContainer, --renew-anon-volumes
    [1] -> #2 container:shop-web-1, StopContainer, replaced
    [2] -> #3 container:shop-web-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-web-1, RenameContainer, to shop-web-1
    [4] -> #5 container:shop-web-1, StartContainer, recreated
    ");
    // A container recreated anyway says its anonymous volumes are renewed.
    let after = with(ANONYMOUS, "image: web:1", "image: web:2");
    let text = plan(&after, &up(ANONYMOUS), &renew);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("config hash diverged: image (--renew-anon-volumes)"),
        "{text}"
    );
}

#[test]
fn no_start_recreates_without_starting() {
    let after = with(THREE_TIER, "MODE: prod", "MODE: dev");
    let no_start = Options {
        no_start: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &no_start), @r"
    [] -> #1 container:000000000000_shop-api-1, CreateContainer, config hash diverged: environment.MODE
    [1] -> #2 container:shop-api-1, StopContainer, replaced
    [2] -> #3 container:shop-api-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-api-1, RenameContainer, to shop-api-1
    ");
}

#[test]
fn scale_to_zero_removes_every_replica() {
    let mut zero = Options::default();
    zero.scale.insert("web".into(), 0);
    insta::assert_snapshot!(plan(THREE_TIER, &up(THREE_TIER), &zero), @r"
    [] -> #1 container:shop-web-1, StopContainer, scale down
    [1] -> #2 container:shop-web-1, RemoveContainer, scale down
    ");
    // And `scale: 0` in the file does the same.
    let file = with(THREE_TIER, "image: web:1", "image: web:1\n    scale: 0");
    assert_eq!(
        plan(&file, &up(THREE_TIER), &Options::default()),
        plan(THREE_TIER, &up(THREE_TIER), &zero)
    );
}

#[test]
fn a_service_removed_with_remove_orphans_goes_and_its_network_is_kept() {
    // db removed (api no longer depends on it): its container goes, the `back` network it
    // alone used is kept with a warning.
    let after = THREE_TIER
        .replace(
            "    depends_on:\n      db: {condition: service_healthy}\n",
            "",
        )
        .replace(
            "  db:\n    image: db:1\n    volumes: [data:/var/lib/db]\n    networks: [back]\n",
            "",
        )
        .replace("networks:\n  back: {}\n", "");
    let remove = Options {
        remove_orphans: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &remove), @r#"
    [] -> #1 container:shop-db-1, StopContainer, orphaned
    [1] -> #2 container:shop-db-1, RemoveContainer, orphaned
    warning: network "shop_back" (back) is no longer in the Compose files; it is kept (`down` removes it)
    "#);
}

const SIDECAR: &str = r#"
services:
  app:
    image: app:1
  proxy:
    image: proxy:1
    network_mode: "service:app"
  backup:
    image: backup:1
    volumes_from: [app]
"#;

#[test]
fn a_recreated_service_recreates_those_that_share_its_namespaces() {
    let after = with(SIDECAR, "image: app:1", "image: app:2");
    insta::assert_snapshot!(plan(&after, &up(SIDECAR), &Options::default()), @r"
    [] -> #1 container:000000000000_shop-app-1, CreateContainer, config hash diverged: image
    [1] -> #2 container:shop-app-1, StopContainer, replaced
    [2] -> #3 container:shop-app-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-app-1, RenameContainer, to shop-app-1
    [4] -> #5 container:shop-app-1, StartContainer, recreated
    [5] -> #6 container:000000000000_shop-backup-1, CreateContainer, volumes_from app recreated
    [6] -> #7 container:shop-backup-1, StopContainer, replaced
    [7] -> #8 container:shop-backup-1, RemoveContainer, replaced
    [8] -> #9 container:000000000000_shop-backup-1, RenameContainer, to shop-backup-1
    [9] -> #10 container:shop-backup-1, StartContainer, recreated
    [5] -> #11 container:000000000000_shop-proxy-1, CreateContainer, network_mode service:app recreated
    [11] -> #12 container:shop-proxy-1, StopContainer, replaced
    [12] -> #13 container:shop-proxy-1, RemoveContainer, replaced
    [13] -> #14 container:000000000000_shop-proxy-1, RenameContainer, to shop-proxy-1
    [14] -> #15 container:shop-proxy-1, StartContainer, recreated
    ");
    // `--no-recreate` holds for them too.
    let keep = Options {
        no_recreate: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(&after, &up(SIDECAR), &keep), @"(nothing to do)");
}

#[test]
fn a_renamed_network_key_creates_the_new_network_and_keeps_the_old() {
    let after = THREE_TIER
        .replace("    networks: [back]", "    networks: [backend]")
        .replace("  back: {}", "  backend: {}");
    insta::assert_snapshot!(plan(&after, &up(THREE_TIER), &Options::default()), @r#"
    [] -> #1 network:shop_backend, CreateNetwork, not found
    [1] -> #2 container:000000000000_shop-db-1, CreateContainer, config hash diverged: networks.back, networks.backend
    [2] -> #3 container:shop-db-1, StopContainer, replaced
    [3] -> #4 container:shop-db-1, RemoveContainer, replaced
    [4] -> #5 container:000000000000_shop-db-1, RenameContainer, to shop-db-1
    [5] -> #6 container:shop-db-1, StartContainer, recreated
    warning: network "shop_back" (back) is no longer in the Compose files; it is kept (`down` removes it)
    "#);
}

#[test]
fn an_external_network_is_used_as_it_is() {
    let yaml = with(
        THREE_TIER,
        "  back: {}",
        "  back: {external: true, name: shared}",
    );
    // Fresh: everything but the external network is created.
    insta::assert_snapshot!(plan(&yaml, &Live::default(), &Options::default()), @r"
    [] -> #1 volume:shop_data, CreateVolume, not found
    [] -> #2 network:shop_default, CreateNetwork, not found
    [1] -> #3 container:shop-db-1, CreateContainer, not found
    [3] -> #4 container:shop-db-1, StartContainer, created
    [2,4] -> #5 container:shop-api-1, CreateContainer, not found
    [5] -> #6 container:shop-api-1, StartContainer, created
    [2,6] -> #7 container:shop-web-1, CreateContainer, not found
    [7] -> #8 container:shop-web-1, StartContainer, created
    ");
    // Its definition changed: still nothing done to it.
    let after = with(&yaml, "name: shared", "name: shared, labels: {a: b}");
    insta::assert_snapshot!(plan(&after, &up(&yaml), &Options::default()), @"(nothing to do)");
}

#[test]
fn container_name_services_are_planned_under_their_names() {
    let named = with(
        THREE_TIER,
        "image: db:1",
        "image: db:1\n    container_name: shop-database",
    );
    insta::assert_snapshot!(plan(&named, &Live::default(), &options(&["db"])), @r"
    [] -> #1 volume:shop_data, CreateVolume, not found
    [] -> #2 network:shop_back, CreateNetwork, not found
    [1,2] -> #3 container:shop-database, CreateContainer, not found
    [3] -> #4 container:shop-database, StartContainer, created
    ");
    // Setting container_name on a running service replaces its container under the new name.
    insta::assert_snapshot!(plan(&named, &up(THREE_TIER), &Options::default()), @r"
    [] -> #1 container:000000000000_shop-database, CreateContainer, config hash diverged: container_name
    [1] -> #2 container:shop-db-1, StopContainer, replaced
    [2] -> #3 container:shop-db-1, RemoveContainer, replaced
    [3] -> #4 container:000000000000_shop-database, RenameContainer, to shop-database
    [4] -> #5 container:shop-database, StartContainer, recreated
    ");
}

#[test]
fn a_profile_enabled_creates_its_service_and_disabled_makes_it_an_orphan() {
    let profiled = with(
        THREE_TIER,
        "  db:\n",
        "  debug:\n    image: debug:1\n    profiles: [tools]\n  db:\n",
    );
    let without = project_with_profiles(&profiled, &[]);
    let with_tools = project_with_profiles(&profiled, &["tools"]);
    // Enabled: created.
    let p = diff(
        &desired(&with_tools),
        &up_project(&without),
        &Options::default(),
    );
    insta::assert_snapshot!(p.to_string(), @r"
    [] -> #1 container:shop-debug-1, CreateContainer, not found
    [1] -> #2 container:shop-debug-1, StartContainer, created
    ");
    // Disabled again: an orphan.
    let p = diff(
        &desired(&without),
        &up_project(&with_tools),
        &Options::default(),
    );
    insta::assert_snapshot!(p.to_string(), @"warning: found orphan containers (shop-debug-1) for this project; remove them with --remove-orphans");
}

#[test]
fn a_changed_volume_label_is_a_warning_and_the_container_is_kept() {
    let after = with(
        THREE_TIER,
        "  data: {}",
        "  data: {labels: {backup: daily}}",
    );
    let text = plan(&after, &up(THREE_TIER), &Options::default());
    assert!(!text.contains("container:"), "{text}");
    insta::assert_snapshot!(text, @r#"warning: volume "shop_data" exists with another configuration; it is kept (remove it with `down -v` to recreate it)"#);
}

#[test]
fn config_diff_shows_the_changed_lines_only() {
    let old = serde_json::json!({"image": "api:1", "environment": {"MODE": "prod", "A": "1"}});
    let new = serde_json::json!({"environment": {"A": "1", "MODE": "dev"}, "image": "api:1"});
    insta::assert_snapshot!(config_diff(&old, &new), @r#"
    --- live
    +++ compose
    @@ -2,5 +2,5 @@
       "environment": {
         "A": "1",
    -    "MODE": "prod"
    +    "MODE": "dev"
       },
       "image": "api:1"
    "#);
    assert_eq!(config_diff(&old, &old), "");
}

#[test]
fn replaced_by_names_the_container_a_replacement_replaces() {
    let after = with(THREE_TIER, "MODE: prod", "MODE: dev");
    let p = diff(
        &desired(&project(&after)),
        &up(THREE_TIER),
        &Options::default(),
    );
    let replaced: Vec<(usize, &str)> = p
        .steps
        .iter()
        .filter_map(|s| p.replaced_by(s).map(|r| (s.id, r)))
        .collect();
    assert_eq!(replaced, [(1, "shop-api-1")]);
}

#[test]
fn start_and_restart_touch_existing_containers_only_dependencies_first() {
    let mut live = up(THREE_TIER);
    live.containers.retain(|c| c.service != "web");
    for c in live.containers.iter_mut().filter(|c| c.service == "db") {
        c.running = false;
    }
    let d = desired(&project(THREE_TIER));
    // start: only what is not running; web has no container and is left to `up`.
    insta::assert_snapshot!(start(&d, &live, &[], false).to_string(), @"[] -> #1 container:shop-db-1, StartContainer, start");
    // restart api: stopped, then started (db is not its business).
    insta::assert_snapshot!(start(&d, &live, &["api".to_string()], true).to_string(), @r"
    [] -> #1 container:shop-api-1, StopContainer, restart
    [1] -> #2 container:shop-api-1, StartContainer, restart
    ");
}

#[test]
fn a_replacement_left_under_its_temporary_name_is_removed_first() {
    // `up` was killed after creating the api's replacement, before the rename.
    let mut live = up(THREE_TIER);
    let mut leftover = live
        .containers
        .iter()
        .find(|c| c.service == "api")
        .unwrap()
        .clone();
    leftover.name = format!("{}_shop-api-1", &leftover.id[..12]);
    leftover.id = format!("{:f>64}", 1);
    leftover.running = false;
    live.containers.push(leftover);
    insta::assert_snapshot!(plan(THREE_TIER, &live, &Options::default()), @"[] -> #1 container:000000000000_shop-api-1, RemoveContainer, left by an interrupted recreate");
    assert!(is_temporary("0123456789ab_shop-api-1"));
    assert!(!is_temporary("shop_api-1"));
}

fn one_off(service: &str, no_deps: bool) -> Options {
    Options {
        one_off: Some(service.into()),
        no_deps,
        ..Options::default()
    }
}

#[test]
fn run_plans_what_the_one_off_needs_but_not_its_service() {
    // `run api`: db (its dependency) and the networks and volumes used, no api container.
    insta::assert_snapshot!(plan(THREE_TIER, &Live::default(), &one_off("api", false)), @r"
    [] -> #1 volume:shop_data, CreateVolume, not found
    [] -> #2 network:shop_back, CreateNetwork, not found
    [] -> #3 network:shop_default, CreateNetwork, not found
    [1,2] -> #4 container:shop-db-1, CreateContainer, not found
    [4] -> #5 container:shop-db-1, StartContainer, created
    ");
    // `run --no-deps web`: only its network.
    insta::assert_snapshot!(plan(THREE_TIER, &Live::default(), &one_off("web", true)), @"[] -> #1 network:shop_default, CreateNetwork, not found");
    // Its own stopped or changed containers are left as they are.
    let mut live = up(THREE_TIER);
    live.containers
        .iter_mut()
        .for_each(|c| c.running = c.service != "api");
    let changed = with(THREE_TIER, "MODE: prod", "MODE: dev");
    insta::assert_snapshot!(plan(&changed, &live, &one_off("api", false)), @"(nothing to do)");
}

#[test]
fn one_off_containers_are_left_alone_by_up_and_removed_by_down() {
    let mut live = up(THREE_TIER);
    let mut run = live.containers[0].clone();
    run.name = "shop-web-run-0123456789ab".into();
    run.id = format!("{:f>64}", "");
    run.one_off = true;
    run.running = false;
    run.hash = "stale".into();
    live.containers.push(run);
    // Neither an orphan, nor a replica to recreate, scale down or start.
    let scaled = Options {
        scale: [("web".to_string(), 0)].into(),
        remove_orphans: true,
        ..Options::default()
    };
    insta::assert_snapshot!(plan(THREE_TIER, &live, &scaled), @r"
    [] -> #1 container:shop-web-1, StopContainer, scale down
    [1] -> #2 container:shop-web-1, RemoveContainer, scale down
    ");
    let d = desired(&project(THREE_TIER));
    assert!(crate::plan::start(&d, &live, &[], false).is_empty());
    let down = teardown(Some(&d), &live, &[]).to_string();
    assert!(
        down.contains("container:shop-web-run-0123456789ab, RemoveContainer, down"),
        "{down}"
    );
}
