#!/usr/bin/env bash
# Install the system packages kha needs, when missing (Debian/Ubuntu).
#   scripts/deps.sh demo   `kha demo` needs none: it simulates etcd when `etcd` is absent,
#                          and uses real etcd processes when etcd-server is installed.
#   scripts/deps.sh test   everything the test suite drives for real:
#     etcd-server  -> etcd      (a real 3-member cluster; kill/SIGSTOP members)
#     etcd-client  -> etcdctl   (checks that kha's simulated etcd speaks the real protocol)
#     tmux                      (end-to-end tests drive the real TUI in tmux)
#     openssl                   (TLS tests issue a CA and certificates)
#     curl                      (lab HTTP API tests)
#     haproxy                   (the lab's HAProxy runtime API is compared with a real one)
#     kubectl                   (the lab's Kubernetes API is driven with the real kubectl)
#     prometheus -> prometheus, promtool (KPI queries against a real Prometheus, backfilled)
#     openssh-server -> sshd    (runbook steps over a real ssh connection on loopback)
#     nginx, libnginx-mod-stream (the nginx LB runbook reloads a private nginx on loopback;
#                               Debian builds the `stream` module apart, and plain `nginx`
#                               lacks it. On a systemd host the package also starts the
#                               system nginx on port 80; the tests never use that one)
# protoc is NOT needed: scripts/protoc uses the vendored binary (see .cargo/config.toml).
set -euo pipefail
purpose=${1:-test}
want=()
if [ "$purpose" = test ]; then
  command -v etcd    >/dev/null 2>&1 || want+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || want+=(etcd-client)
  command -v tmux    >/dev/null 2>&1 || want+=(tmux)
  command -v openssl >/dev/null 2>&1 || want+=(openssl)
  command -v curl    >/dev/null 2>&1 || want+=(curl)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || want+=(haproxy)
  command -v kubectl >/dev/null 2>&1 || want+=(kubectl)
  { command -v prometheus && command -v promtool; } >/dev/null 2>&1 || want+=(prometheus)
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || want+=(openssh-server)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx)
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || want+=(libnginx-mod-stream)
fi
if [ ${#want[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "kha: installing ${want[*]}" >&2
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}"; then
    case " ${want[*]} " in
      *" kubectl "*)
        # Debian's own kubernetes-client is far too old (1.20): kubectl comes from the
        # Kubernetes apt repository (https://pkgs.k8s.io), which must be configured.
        echo "kha: could not install ${want[*]}; for kubectl add the pkgs.k8s.io apt repository" >&2 ;;
    esac
    exit 1
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "kha: cargo not found. Install Rust with rustup (https://rustup.rs), then re-run." >&2
  exit 1
fi
