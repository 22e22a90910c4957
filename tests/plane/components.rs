//! The command line of each process of the plane, and the nodes kwok stands in for.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::pki::Pki;

/// Where one plane's programs and files are.
pub struct Components<'a> {
    /// The built binaries (`e2e/build-plane.sh`).
    pub bin: &'a Path,
    /// The plane's own folder.
    pub dir: &'a Path,
    /// Its certificates.
    pub pki: &'a Pki,
    /// The admin kubeconfig every component uses.
    pub kubeconfig: &'a Path,
}

/// The controllers a Deployment, its HPA and PDB, and namespace cleanup need.
const CONTROLLERS: [&str; 11] = [
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "node-lifecycle-controller",
    "serviceaccount-controller",
    "endpointslice-controller",
    "pod-garbage-collector-controller",
    "horizontal-pod-autoscaler-controller",
    "disruption-controller",
    "root-ca-certificate-publisher-controller",
];

/// kwok's own stages, as in its `kustomize/stage/fast` set.
const KWOK_STAGES: [&str; 5] = [
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
];

/// How many nodes [`NODES`] creates.
pub const NODE_COUNT: usize = 2;

/// Two fake nodes in two zones, managed by kwok.
pub const NODES: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: kwok-node-a
    annotations: {kwok.x-k8s.io/node: fake}
    labels: {kubernetes.io/hostname: kwok-node-a, kubernetes.io/os: linux, kubernetes.io/arch: amd64,
             topology.kubernetes.io/region: e2e, topology.kubernetes.io/zone: zone-a}
  status:
    allocatable: {cpu: "4", memory: 16Gi, pods: "110"}
    capacity: {cpu: "4", memory: 16Gi, pods: "110"}
- apiVersion: v1
  kind: Node
  metadata:
    name: kwok-node-b
    annotations: {kwok.x-k8s.io/node: fake}
    labels: {kubernetes.io/hostname: kwok-node-b, kubernetes.io/os: linux, kubernetes.io/arch: amd64,
             topology.kubernetes.io/region: e2e, topology.kubernetes.io/zone: zone-b}
  status:
    allocatable: {cpu: "4", memory: 16Gi, pods: "110"}
    capacity: {cpu: "4", memory: 16Gi, pods: "110"}
"#;

impl Components<'_> {
    /// etcd on `client` and `peer` (127.0.0.1), no fsync: a test's data need not survive.
    pub fn etcd(&self, client: u16, peer: u16) -> Command {
        let client = format!("http://127.0.0.1:{client}");
        let peer = format!("http://127.0.0.1:{peer}");
        self.command(
            "etcd",
            vec![
                "--name=e2e".to_owned(),
                format!("--data-dir={}", self.dir.join("etcd").display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster=e2e={peer}"),
                "--unsafe-no-fsync=true".to_owned(),
                "--log-level=warn".to_owned(),
            ],
        )
    }

    /// envtest's minimal secure set (../shared/CONTROL-PLANE.md §3), with the ServiceAccount
    /// admission plugin left on, as in a real cluster.
    pub fn apiserver(&self, etcd: u16, port: u16) -> Command {
        self.command(
            "kube-apiserver",
            vec![
                format!("--etcd-servers=http://127.0.0.1:{etcd}"),
                "--bind-address=127.0.0.1".to_owned(),
                "--advertise-address=127.0.0.1".to_owned(),
                format!("--secure-port={port}"),
                format!("--tls-cert-file={}", self.pki("apiserver.crt")),
                format!("--tls-private-key-file={}", self.pki("apiserver.key")),
                format!("--client-ca-file={}", self.pki("ca.crt")),
                format!("--service-account-issuer=https://127.0.0.1:{port}"),
                format!("--service-account-key-file={}", self.pki("sa.pub")),
                format!("--service-account-signing-key-file={}", self.pki("sa.key")),
                "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
                "--authorization-mode=RBAC".to_owned(),
                "--allow-privileged=true".to_owned(),
            ],
        )
    }

    /// kube-controller-manager with [`CONTROLLERS`], serving no port of its own.
    pub fn controller_manager(&self) -> Command {
        self.command(
            "kube-controller-manager",
            vec![
                format!("--kubeconfig={}", self.kubeconfig.display()),
                "--leader-elect=false".to_owned(),
                "--secure-port=0".to_owned(),
                format!("--controllers={}", CONTROLLERS.join(",")),
                format!("--service-account-private-key-file={}", self.pki("sa.key")),
                format!("--root-ca-file={}", self.pki("ca.crt")),
            ],
        )
    }

    /// kube-scheduler with its default profile, serving no port of its own.
    pub fn scheduler(&self) -> Command {
        self.command(
            "kube-scheduler",
            vec![
                format!("--kubeconfig={}", self.kubeconfig.display()),
                "--leader-elect=false".to_owned(),
                "--secure-port=0".to_owned(),
            ],
        )
    }

    /// kwok with kwok's fast stages (from the built module) and `e2e/failure-stages.yaml`;
    /// `KWOK_WORKDIR` keeps it from reading a `~/.kwok/kwok.yaml`.
    pub fn kwok(&self) -> Command {
        let mut args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--manage-all-nodes=true".to_owned(),
            "--cidr=10.244.0.0/16".to_owned(),
            "--node-lease-duration-seconds=40".to_owned(),
        ];
        let stages = self.bin.join("kwok-stages");
        args.extend(
            KWOK_STAGES
                .iter()
                .map(|stage| format!("--config={}", stages.join(stage).display())),
        );
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/failure-stages.yaml");
        args.push(format!("--config={}", ours.display()));
        let mut cmd = self.command("kwok", args);
        cmd.env("KWOK_WORKDIR", self.dir.join("kwok"));
        cmd
    }

    fn command(&self, tool: &str, args: Vec<String>) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args).current_dir(self.dir);
        cmd
    }

    fn pki(&self, name: &str) -> String {
        let path: PathBuf = self.pki.path(name);
        path.display().to_string()
    }
}
