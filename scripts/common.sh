# Sourced by scripts/test, scripts/lambda-local and scripts/package: the git-ignored .venv
# with the Python tools (pinned in requirements-test.txt), and moto's server on a free port.

venv=.venv

# Installs what requirements-test.txt pins into .venv, once per change of that file.
install_python_tools() {
  local requirements=scripts/requirements-test.txt
  local stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "==> installing the Python tools into $venv (moto, cfn-lint, aws-sam-cli, cargo-lambda, zig, pyotp)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
}

# Starts moto's server on a free loopback port, sets moto_port, and stops it on exit.
start_moto() {
  moto_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local log
  log=$(mktemp -t latchkey-moto.XXXXXX.log)
  # One request at a time: see scripts/moto_server.py for why.
  "$venv/bin/python" scripts/moto_server.py 127.0.0.1 "$moto_port" >"$log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$moto_port/moto-api/')" 2>/dev/null; then
      echo "==> moto's server is listening on 127.0.0.1:$moto_port"
      return 0
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
      echo "moto's server exited; its log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto's server did not start within 10 s; its log:" >&2
  cat "$log" >&2
  return 1
}
