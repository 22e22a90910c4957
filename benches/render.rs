//! Build + render cost, for the committed production environment and scaled copies of it
//! (1, 100 and 1,000 Ingress hosts and models), to show the cost grows linearly.
#![expect(
    clippy::panic,
    reason = "a benchmark whose fixture does not load must stop loudly"
)]

use std::hint::black_box;
use std::path::PathBuf;

use ai_api_proxy_config::ModelRoute;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use infra::config::{self, Environment, Hostname, IngressHost, IngressPath, Layers, PathType};
use infra::render::{self, Provenance};

fn production() -> Environment {
    let layers = Layers {
        dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/environments")),
        env: "production".into(),
        sets: Vec::new(),
    };
    match config::load(&layers) {
        Ok(env) => env,
        Err(e) => panic!("{e}"),
    }
}

fn scaled(n: usize) -> Environment {
    let mut env = production();
    let hosts: Vec<Hostname> = (0..n)
        .map(|i| {
            Hostname::try_from(format!("api{i}.ai.example.com")).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    env.ingress.hosts = hosts
        .iter()
        .map(|host| IngressHost {
            host: host.clone(),
            paths: vec![IngressPath {
                path: "/".into(),
                path_type: PathType::Prefix,
            }],
        })
        .collect();
    env.ingress.tls[0].hosts = hosts;
    env.proxy.models = (0..n)
        .map(|i| ModelRoute {
            name: format!("model-{i}"),
            upstreams: vec!["holysheep".into()],
            on_stream_failure: Default::default(),
        })
        .collect();
    env
}

fn build_and_render(env: &Environment) -> usize {
    let provenance = Provenance {
        env: "production".into(),
        files: vec!["environments/production.toml".into()],
        overrides: vec![],
    };
    let objects = infra::objects::objects(env, "production");
    match render::files(&objects, &provenance) {
        Ok(files) => files.iter().map(|f| f.content.len()).sum(),
        Err(e) => panic!("{e}"),
    }
}

fn bench(c: &mut Criterion) {
    let committed = production();
    c.bench_function("load production (figment layers + validation)", |b| {
        b.iter(production)
    });
    c.bench_function("build + render production", |b| {
        b.iter(|| build_and_render(black_box(&committed)))
    });
    let mut group = c.benchmark_group("build + render, N hosts and N models");
    for n in [1, 100, 1000] {
        let env = scaled(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &env, |b, env| {
            b.iter(|| build_and_render(black_box(env)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
