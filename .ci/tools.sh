# Sourced by the .ci/ scripts: every third-party tool CI runs, at an exact version, and the one
# way each kind of tool is installed. A release of a tool cannot turn CI red or green on its
# own: a version changes only in a commit. How to bump: README.md, "Pinned CI tools".
#
#   source .ci/tools.sh
#   venv="$(pip_tools)"                                   # kubernetes-validate, checkov
#   taplo="$(npm_tool @taplo/cli "$TAPLO_CLI_VERSION" taplo)"
#   apt_tool prometheus "$PROMETHEUS_DEB_VERSION"         # then: promtool
#
# Tools are installed under $CI_TOOLS_DIR (default: $TMPDIR/infra-ci-tools), one folder per
# version, so a bump installs anew and an unchanged pin is reused.

# Python tools: .ci/requirements.txt (all dependencies pinned). pip itself:
PIP_VERSION=26.3
# npm packages (npm_tool):
TAPLO_CLI_VERSION=0.7.0   # `taplo --version` says 0.9.0: the npm package bundles that release
# Debian packages (apt_tool), exact Debian versions as `apt-cache policy <package>` shows them:
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
REDIS_DEB_VERSION=5:7.0.15-1~deb12u10   # redis-server for the shared-limits tests
TINYPROXY_DEB_VERSION=1.11.1-2.1+deb12u1   # the HTTP CONNECT proxy of the proxy's egress tests

CI_TOOLS="${CI_TOOLS_DIR:-${TMPDIR:-/tmp}/infra-ci-tools}"
CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# pip_venv REQUIREMENTS NAME: prints the bin folder of a virtualenv holding exactly that
# requirements file (every dependency pinned), kept per content under $CI_TOOLS/NAME-<hash>.
pip_venv() {
  local req=$1 name=$2 key venv
  key="$(cat "$req" <(echo "$PIP_VERSION") | sha256sum | cut -c1-12)"
  venv="$CI_TOOLS/$name-$key"
  if ! [[ -f "$venv/.complete" ]]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2> /dev/null; then
      apt-get update -qq > /dev/null && apt-get install -y -qq python3-venv > /dev/null
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet "pip==$PIP_VERSION" >&2
    "$venv/bin/pip" install --quiet --no-deps --require-virtualenv -r "$req" >&2
    "$venv/bin/pip" check >&2
    touch "$venv/.complete"
  fi
  echo "$venv/bin"
}

# Prints the bin folder of a virtualenv holding exactly .ci/requirements.txt.
pip_tools() { pip_venv "$CI_DIR/requirements.txt" venv; }

# npm_tool PACKAGE VERSION BIN: installs PACKAGE@VERSION (exactly) and prints the path of BIN.
npm_tool() {
  local package=$1 version=$2 bin=$3 dir
  dir="$CI_TOOLS/npm/${package//\//+}@$version"
  if ! [[ -x "$dir/node_modules/.bin/$bin" ]]; then
    command -v npm > /dev/null || { echo "npm_tool: npm is not installed" >&2; return 1; }
    npm install --silent --no-audit --no-fund --save-exact --prefix "$dir" "$package@$version" >&2
  fi
  [[ -x "$dir/node_modules/.bin/$bin" ]] || { echo "npm_tool: no $bin in $package@$version" >&2; return 1; }
  echo "$dir/node_modules/.bin/$bin"
}

# apt_tool PACKAGE VERSION: installs that exact Debian version (fails if the archive lacks it).
apt_tool() {
  local package=$1 version=$2 installed
  installed="$(dpkg-query -W -f '${Version}' "$package" 2> /dev/null || echo none)"
  if [[ "$installed" != "$version" ]]; then
    apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "$package=$version" > /dev/null
  fi
  installed="$(dpkg-query -W -f '${Version}' "$package")"
  [[ "$installed" == "$version" ]] || { echo "apt_tool: $package is $installed, not $version" >&2; return 1; }
}

# The official SDKs the proxy's acceptance tests drive (proxy/tests/sdk/: requirements.txt and
# package.json + package-lock.json pin every version). sdk_python prints the python of a
# virtualenv holding them; sdk_node_path prints a node_modules folder (for NODE_PATH).
sdk_python() {
  local bin
  bin="$(pip_venv "$CI_DIR/../proxy/tests/sdk/requirements.txt" sdk-venv)" && echo "$bin/python"
}
sdk_node_path() {
  local src="$CI_DIR/../proxy/tests/sdk" key dir
  key="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-12)"
  dir="$CI_TOOLS/sdk-node-$key"
  if ! [[ -f "$dir/.complete" ]]; then
    command -v npm > /dev/null || { echo "sdk_node_path: npm is not installed" >&2; return 1; }
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --silent --no-audit --no-fund >&2)
    touch "$dir/.complete"
  fi
  echo "$dir/node_modules"
}
