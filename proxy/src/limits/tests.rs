//! Limiters sharing one real `redis-server`: limits held together, budgets shared, the store
//! killed and restarted under them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_api_proxy_config::{KeyPolicy, Lease, Policies, SharedLimits, WhenUnreachable};

use super::{Limiter, Refusal};

#[path = "../../tests/common/redis.rs"]
mod redis_server;
use redis_server::{PASSWORD, RedisServer};

fn policies(policy: KeyPolicy) -> Policies {
    Policies {
        default: policy,
        ..Policies::default()
    }
}

fn shared(address: String, when_unreachable: WhenUnreachable) -> SharedLimits {
    SharedLimits {
        address,
        username: None,
        password: None,
        key_prefix: "test".into(),
        replicas: 2,
        when_unreachable,
        lease: Lease {
            settle_every: ai_api_proxy_config::Duration::from_millis(50),
            ..Lease::default()
        },
    }
}

fn limiter(policy: &KeyPolicy, server: &RedisServer, mode: WhenUnreachable) -> Arc<Limiter> {
    let cfg = shared(server.address(), mode);
    Arc::new(
        Limiter::new(
            &policies(policy.clone()),
            Some((&cfg, Some(PASSWORD))),
            super::LimitMetrics::default(),
        )
        .unwrap(),
    )
}

fn client() -> Arc<str> {
    Arc::from("team-a")
}

#[tokio::test]
async fn two_limiters_hold_one_key_to_its_limit_together() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let policy = KeyPolicy {
        requests_per_minute: Some(60),
        ..KeyPolicy::default()
    };
    let replicas = [
        limiter(&policy, &server, WhenUnreachable::PerReplica),
        limiter(&policy, &server, WhenUnreachable::PerReplica),
    ];
    let mut admitted = [0u32; 2];
    let started = Instant::now();
    for i in 0..200 {
        if replicas[i % 2].admit(&client(), Some("m"), 0).await.is_ok() {
            admitted[i % 2] += 1;
        }
    }
    // The bucket holds 60 and refills one a second; allowances still held count as spent.
    let refilled = started.elapsed().as_secs() as u32 + 1;
    let total = admitted[0] + admitted[1];
    assert!(total <= 60 + refilled, "{admitted:?} admitted, limit 60");
    assert!(
        total >= 60 - 2 * 3,
        "{admitted:?} admitted: leases of 3 must not starve either"
    );
    assert!(
        admitted[0] > 20 && admitted[1] > 20,
        "{admitted:?}: both replicas serve"
    );
    let refused = replicas[0].admit(&client(), Some("m"), 0).await.err();
    assert!(
        matches!(refused, Some(Refusal::Requests { limit: 60, .. })),
        "{refused:?}"
    );
    assert!(!replicas[0].degraded() && !replicas[1].degraded());
}

#[tokio::test]
async fn a_budget_spent_through_one_is_spent_for_the_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let policy = KeyPolicy {
        tokens_per_day: Some(1000),
        ..KeyPolicy::default()
    };
    let a = limiter(&policy, &server, WhenUnreachable::PerReplica);
    let b = limiter(&policy, &server, WhenUnreachable::PerReplica);
    let mut served = 0;
    for _ in 0..30 {
        // Estimated at 10, really 100: the settlement is what spends the budget.
        match a.admit(&client(), Some("m"), 10).await {
            Ok(permit) => {
                permit.settle(Some(100));
                served += 1;
            }
            Err(refusal) => {
                assert!(
                    matches!(
                        refusal,
                        Refusal::Budget {
                            period: "day",
                            limit: 1000,
                            ..
                        }
                    ),
                    "{refusal:?}"
                );
                break;
            }
        }
    }
    assert!(
        (10..=11).contains(&served),
        "{served} requests of 100 tokens in a 1000 budget"
    );
    let refusal = b.admit(&client(), Some("m"), 10).await.err();
    assert!(
        matches!(refusal, Some(Refusal::Budget { period: "day", .. })),
        "{refusal:?}"
    );
    let used: i64 = server
        .cli(&["--scan", "--pattern", "test:{team-a}:d*"])
        .lines()
        .map(|key| server.cli(&["GET", key]).parse::<i64>().unwrap_or(0))
        .sum();
    assert!(
        (1000..=1100).contains(&used),
        "the store counted {used} tokens"
    );
}

#[tokio::test]
async fn store_killed_then_restarted_falls_back_and_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let policy = KeyPolicy {
        requests_per_minute: Some(600),
        ..KeyPolicy::default()
    };
    let a = limiter(&policy, &server, WhenUnreachable::PerReplica);
    let settler = tokio::spawn(a.clone().run_settler());
    assert!(a.admit(&client(), Some("m"), 0).await.is_ok());
    server.kill();
    // Spend past the allowance in hand: the next exchange finds the store gone.
    let mut admitted = 0;
    for _ in 0..400 {
        if a.admit(&client(), Some("m"), 0).await.is_ok() {
            admitted += 1;
        }
    }
    assert!(a.degraded(), "a dead store must be noticed");
    assert_eq!(a.metrics.degraded.get(), 1);
    // Alone, the replica holds the client to 600 / 2 replicas (plus what it held).
    assert!(
        (300..=345).contains(&admitted),
        "{admitted} admitted while alone"
    );

    let closed = limiter(&policy, &server, WhenUnreachable::Refuse);
    let mut refusal = None;
    for _ in 0..100 {
        if let Err(r) = closed.admit(&client(), Some("m"), 0).await {
            refusal = Some(r);
            break;
        }
    }
    assert_eq!(
        refusal,
        Some(Refusal::StoreUnavailable),
        "fail-closed refuses"
    );

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.degraded() {
        assert!(
            Instant::now() < deadline,
            "the store is back but the limiter did not notice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.metrics.degraded.get(), 0);
    // Shared again: the next requests take their allowance from the (new, empty) store.
    for _ in 0..50 {
        let _ = a.admit(&client(), Some("m"), 0).await;
    }
    assert_eq!(server.cli(&["EXISTS", "test:{team-a}:rpm"]), "1");
    settler.abort();
}
