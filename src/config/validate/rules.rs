//! The workload's rules, one function per concern: image, replicas, resources, autoscaling,
//! disruption budget, pod security, and what the proxy needs inside a cluster.

use std::net::IpAddr;

use ai_api_proxy_config::{ClientAuth, Duration, KeySource, is_dns_subdomain};

use super::Report;
use crate::config::{Environment, Quantity, ScalingRules};

/// Image: a pinned, well-formed reference.
///
/// At least one of `tag` and `digest` is required; both may be given (the digest wins). "Exactly
/// one" cannot be asked of layered files: `base.toml` sets a tag, and an environment that pins a
/// digest has no way to unset it.
pub(super) fn image(r: &mut Report, env: &Environment) {
    let image = &env.image;
    let repo = &image.repository;
    r.check(repository_ok(repo), "image.repository", || {
        format!(
            "invalid repository `{repo}`: expected a lowercase image name without tag or digest, \
             like `ghcr.io/example/ai-api-proxy`"
        )
    });
    r.check(
        image.tag.is_some() || image.digest.is_some(),
        "image",
        || "neither `tag` nor `digest` is set: expected one of them, e.g. `tag = \"0.1.0\"`".into(),
    );
    if let Some(tag) = &image.tag {
        r.check(tag_ok(tag), "image.tag", || {
            format!(
                "invalid tag `{tag}`: expected up to 128 letters, digits, `_`, `.` and `-`, \
                 not starting with `.` or `-`"
            )
        });
        r.check(
            tag != "latest" || image.digest.is_some(),
            "image.tag",
            || {
                "`latest` moves under running pods and makes renders unreproducible: expected a \
                 version tag like `0.1.0`, or a `digest`"
                    .into()
            },
        );
    }
    if let Some(digest) = &image.digest {
        r.check(digest_ok(digest), "image.digest", || {
            format!(
                "invalid digest `{digest}`: expected `sha256:` followed by 64 lowercase hex digits"
            )
        });
    }
}

fn repository_ok(repo: &str) -> bool {
    let mut parts = repo.split('/');
    let first = parts.next().unwrap_or_default();
    // A first part with `.` or `:` (or `localhost`) is a registry host, which may carry a port.
    let registry = repo.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    let path_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    let host_ok = |h: &str| {
        let (host, port) = h.split_once(':').unwrap_or((h, "1"));
        (is_dns_subdomain(host) || host.parse::<IpAddr>().is_ok())
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    };
    let head_ok = if registry {
        host_ok(first)
    } else {
        path_ok(first)
    };
    repo.len() <= 255 && head_ok && parts.all(path_ok)
}

fn tag_ok(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && !matches!(b[0], b'.' | b'-')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn digest_ok(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Replicas without autoscaling: at least 1. Zero is refused rather than read as "parked": a
/// Deployment of zero pods behind a live Service and Ingress answers every request with 503.
pub(super) fn replicas(r: &mut Report, env: &Environment) {
    r.check(
        env.autoscaling.enabled || env.replicas >= 1,
        "replicas",
        || {
            format!(
                "got {}: expected at least 1 (with autoscaling off this is the pod count)",
                env.replicas
            )
        },
    );
}

/// Requests and limits: amounts in the right unit, and requests within limits.
pub(super) fn resources(r: &mut Report, env: &Environment) {
    let res = &env.resources;
    for (kind, q) in [("requests", &res.requests), ("limits", &res.limits)] {
        if let Some(cpu) = &q.cpu {
            cpu_plausible(r, &format!("resources.{kind}.cpu"), cpu);
        }
        if let Some(memory) = &q.memory {
            memory_plausible(r, &format!("resources.{kind}.memory"), memory);
        }
    }
    for (name, request, limit) in [
        ("cpu", &res.requests.cpu, &res.limits.cpu),
        ("memory", &res.requests.memory, &res.limits.memory),
    ] {
        // A limit without a request is fine (Kubernetes copies it), so is a request without a limit.
        if let (Some(request), Some(limit)) = (request, limit) {
            r.check(
                request <= limit,
                format!("resources.requests.{name}"),
                || {
                    format!(
                        "request `{request}` exceeds limit `{limit}` (resources.limits.{name}): \
                     expected a request at most the limit"
                    )
                },
            );
        }
    }
}

fn cpu_plausible(r: &mut Report, path: &str, cpu: &Quantity) {
    let text = cpu.as_str();
    r.check(cpu.millis() > 0, path, || {
        format!("got `{text}`: expected more than 0 CPU, like `250m` or `1`")
    });
    // `Mi`, `Gi`… on a CPU amount is almost always a memory amount in the wrong key.
    r.check(
        !text.ends_with('i') && cpu.millis() <= 1_000_000,
        path,
        || format!("got `{text}`, which is over 1000 cores: expected cores like `250m` or `2` (`Mi` and `Gi` are for memory)"),
    );
}

fn memory_plausible(r: &mut Report, path: &str, memory: &Quantity) {
    let text = memory.as_str();
    if let Some(number) = text.strip_suffix('m') {
        // `m` is milli: `512m` of memory is half a byte.
        r.push(
            path,
            format!("`{text}` means {number} thousandths of a byte: expected `{number}Mi` (mebibytes) or `{number}M`"),
        );
        return;
    }
    r.check(memory.millis() >= (1 << 20) * 1000, path, || {
        format!("got `{text}`, less than 1Mi: expected bytes with a unit, like `128Mi` or `1Gi`")
    });
}

/// The HorizontalPodAutoscaler: bounds, targets, their requests, and the scaling behavior.
pub(super) fn autoscaling(r: &mut Report, env: &Environment) {
    let a = &env.autoscaling;
    r.check(a.min_replicas >= 1, "autoscaling.min_replicas", || {
        format!("got {}: expected at least 1", a.min_replicas)
    });
    r.check(
        a.max_replicas >= a.min_replicas,
        "autoscaling.max_replicas",
        || {
            format!(
                "got {}: expected at least autoscaling.min_replicas ({})",
                a.max_replicas, a.min_replicas
            )
        },
    );
    let targets = [
        (
            "cpu",
            "CPU",
            a.target_cpu_utilization,
            &env.resources.requests.cpu,
        ),
        (
            "memory",
            "memory",
            a.target_memory_utilization,
            &env.resources.requests.memory,
        ),
    ];
    for (key, name, target, request) in targets {
        let Some(target) = target else { continue };
        let path = format!("autoscaling.target_{key}_utilization");
        r.check((1..=100).contains(&target), &path, || {
            format!("got {target}: expected a percentage of the {name} request from 1 to 100")
        });
        r.check(
            !a.enabled || request.is_some(),
            format!("resources.requests.{key}"),
            || {
                format!(
                    "not set, but autoscaling.target_{key}_utilization ({target}%) is a percentage \
                     of it: expected a {name} request, like `{}`",
                    if key == "cpu" { "250m" } else { "128Mi" }
                )
            },
        );
    }
    r.check(
        !a.enabled || a.target_cpu_utilization.is_some() || a.target_memory_utilization.is_some(),
        "autoscaling",
        || {
            "enabled without a target: expected target_cpu_utilization or \
             target_memory_utilization (a percentage of the request, e.g. 70)"
                .into()
        },
    );
    scaling_rules(r, "autoscaling.behavior.scale_up", &a.behavior.scale_up);
    scaling_rules(r, "autoscaling.behavior.scale_down", &a.behavior.scale_down);
}

/// Kubernetes' own bounds on `behavior`: a period of 1 s to 30 min, a window of at most 1 h, and
/// policies that allow at least one pod or percent per period.
fn scaling_rules(r: &mut Report, at: &str, rules: &ScalingRules) {
    let period = rules.period;
    r.check(
        !period.get().is_zero() && period <= Duration::from_secs(1800),
        format!("{at}.period"),
        || format!("got `{period}`: expected from 1s to 30m"),
    );
    let window = rules.stabilization_window;
    r.check(
        window <= Duration::from_secs(3600),
        format!("{at}.stabilization_window"),
        || format!("got `{window}`: expected at most 1h"),
    );
    r.check(rules.max_percent >= 1, format!("{at}.max_percent"), || {
        "got 0, which forbids scaling in this direction: expected at least 1".into()
    });
    r.check(rules.max_pods >= 1, format!("{at}.max_pods"), || {
        "got 0, which forbids scaling in this direction: expected at least 1".into()
    });
}

/// The PodDisruptionBudget must let a drain evict something, or every node drain (upgrades,
/// autoscaler scale-down) hangs on these pods. `max_unavailable` at or above the replica count
/// protects less, but never blocks, so it is allowed.
pub(super) fn disruption_budget(r: &mut Report, env: &Environment) {
    let pdb = &env.disruption_budget;
    r.check(
        !pdb.enabled || pdb.max_unavailable >= 1,
        "disruption_budget.max_unavailable",
        || {
            "got 0, which blocks every node drain: expected at least 1 (or `enabled = false`)"
                .into()
        },
    );
}

/// The pod: a non-root user, and a spread constraint Kubernetes accepts.
pub(super) fn pod(r: &mut Report, env: &Environment) {
    let s = &env.security;
    r.check(s.run_as_user >= 1, "security.run_as_user", || {
        format!(
            "got {}: expected a non-root user id (1 or more, e.g. 10001); the restricted profile refuses root",
            s.run_as_user
        )
    });
    r.check(s.run_as_group >= 0, "security.run_as_group", || {
        format!("got {}: expected a group id of 0 or more", s.run_as_group)
    });
    r.check(
        env.topology_spread.max_skew >= 1,
        "topology_spread.max_skew",
        || "got 0: expected at least 1 (Kubernetes refuses 0)".into(),
    );
}

/// What the proxy can and cannot get inside a cluster.
///
/// `proxy.shutdown.drain_timeout` shorter than `proxy.timeouts.total` is allowed: it is the
/// trade-off between rollout speed and cutting the longest streams (development takes 30 s), and
/// the proxy itself refuses a drain of 0 s. A grace delay of 0 s is refused: the pod would stop
/// accepting before endpoints and load balancers stop routing to it, so every rollout drops
/// requests.
pub(super) fn proxy_in_a_cluster(r: &mut Report, env: &Environment) {
    let proxy = &env.proxy;
    r.check(proxy.port >= 1024, "proxy.port", || {
        format!(
            "got {}: the proxy runs as a non-root user without capabilities and cannot bind ports \
             below 1024: expected 1024 to 65535, like 8080 (service.port can still be 80)",
            proxy.port
        )
    });
    r.check(proxy.admin_port >= 1024, "proxy.admin_port", || {
        format!(
            "got {}: the proxy cannot bind ports below 1024 either: expected 1024 to 65535, like 9090",
            proxy.admin_port
        )
    });
    let grace = proxy.shutdown.grace_delay;
    r.check(!grace.get().is_zero(), "proxy.shutdown.grace_delay", || {
        "got `0s`: the pod would refuse connections while Service endpoints still route to it: \
         expected a few seconds, like `5s`"
            .into()
    });
    if let Some(ClientAuth::ApiKeys { keys }) = &proxy.auth {
        env_key_source(r, "proxy.auth.api_keys.keys", keys);
    }
    for (i, u) in proxy.upstreams.iter().enumerate() {
        env_key_source(r, &format!("proxy.upstreams[{i}].api_key"), &u.api_key);
    }
}

pub(super) fn env_key_source(r: &mut Report, at: &str, source: &KeySource) {
    if let KeySource::Env(var) = source {
        r.push(
            format!("{at}.env"),
            format!(
                "`{var}` is a variable of the proxy process, which the cluster does not set: expected \
                 a Secret reference, `{{ secret = {{ name = \"…\", key = \"…\" }} }}`"
            ),
        );
    }
}
