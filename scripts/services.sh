#!/usr/bin/env bash
# scripts/services.sh: make the test backends of scheduler-service answer on 127.0.0.1.
#
#   bash scripts/services.sh up [NAME...]      make each answer (install, start, create the test
#                                              role/database), then print `export TEST_...=...`
#   bash scripts/services.sh status [NAME...]  one line per backend
#   bash scripts/services.sh down [NAME...]    stop what `up` started here (recorded PIDs only)
#
#   eval "$(bash scripts/services.sh up)"            # all of them, or: make services
#   eval "$(bash scripts/services.sh up postgres redis)"
#
# NAMEs (default: all): postgres mariadb redis zookeeper mongodb rethinkdb
#   (also: postgresql pg, mysql, zk, mongo, rethink)
#
# For a Debian machine (12 or later), as root, with or without an init system (containers have
# none, so servers are started directly, never through systemd). A backend that already answers
# on its port is used as it is and never stopped (the machine's own PostgreSQL, say); only its
# test role and database are created. Otherwise:
#   postgres   Debian's postgresql (apt), its cluster started with pg_ctlcluster
#   mariadb    Debian's mariadb-server (apt), mariadbd started with start-stop-daemon
#   redis      Debian's redis-server (apt), daemonized, no persistence; tests use db 15
#   zookeeper  Debian's zookeeper (apt), one standalone server, data under $BACKENDS_DIR
#   mongodb    an EMULATOR, not MongoDB: nx-27017 from PyPI (MongoDB's wire protocol on SQLite)
#              in a venv under $BACKENDS_OPT; no MongoDB server comes from Debian or PyPI
#   rethinkdb  an EMULATOR, not RethinkDB: reqlite from npm (a ReQL server in JavaScript, in
#              memory) under $BACKENDS_OPT, with nodejs/npm from Debian
# TEST_MONGODB_SERVER / TEST_RETHINKDB_SERVER say `emulator:...` or `real`, from what answers.
#
# stdout carries only the export lines; progress goes to stderr. A backend that cannot be made
# ready in $BACKENDS_TIMEOUT seconds fails `up` (exit 1, `false` on stdout so that an `eval` of
# it fails too) with the tail of its logs on stderr. Logs, data and PIDs: $BACKENDS_DIR/<name>/.
# Idempotent, and quick (well under a second) when everything already answers.
#
# Environment: BACKENDS_DIR (default /tmp/scheduler-service-backends), BACKENDS_OPT (emulator
# installs; default /opt/scheduler-service-backends), BACKENDS_TIMEOUT (seconds per server,
# default 60), BACKENDS_PYTHON (python for the nx-27017 venv, default python3), and
# BACKENDS_PORT_<NAME> for redis, zookeeper, mongodb and rethinkdb (PostgreSQL and MariaDB answer
# where the distribution's configuration says: 5432, 3306).
#
# Why one long script: it is bash so that a fresh machine needs nothing but apt to run it, and
# each backend is one short section of the same functions (alive, ready, packages, install,
# start, setup, exports, logs) that the three commands at the end drive.
set -uo pipefail

BACKENDS_DIR="${BACKENDS_DIR:-/tmp/scheduler-service-backends}"
BACKENDS_OPT="${BACKENDS_OPT:-/opt/scheduler-service-backends}"
BACKENDS_TIMEOUT="${BACKENDS_TIMEOUT:-60}"
BACKENDS_PYTHON="${BACKENDS_PYTHON:-python3}"
DB=scheduler_test          # the test database (PostgreSQL, MariaDB, MongoDB, RethinkDB)
DB_USER=scheduler          # the SQL role/user of the tests, password = name
DB_PASS=scheduler
NX_VERSION=0.8.1           # PyPI nx-27017 (MongoDB wire-protocol emulator)
REQLITE_VERSION=2.3.0      # npm reqlite (ReQL server emulator)
ALL=(postgres mariadb redis zookeeper mongodb rethinkdb)

declare -A PORT=(
  [postgres]=5432 [mariadb]=3306
  [redis]="${BACKENDS_PORT_REDIS:-6379}" [zookeeper]="${BACKENDS_PORT_ZOOKEEPER:-2181}"
  [mongodb]="${BACKENDS_PORT_MONGODB:-27017}" [rethinkdb]="${BACKENDS_PORT_RETHINKDB:-28015}"
)

# ----------------------------------------------------------------------------- helpers
say() { echo "[services] $*" >&2; }
fail() {
  say "ERROR: $*"
  [[ ${COMMAND:-} == up ]] && echo false
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

show_logs() { # FILE...: the end of each non-empty one, on stderr
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 25 "$f" >&2
  done
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
listener() { # PORT: pid of the process listening there, if `ss` can tell
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}
alive_pid() { # PID: it exists and is no zombie
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) && [[ ${state%% *} != Z ]]
}
ours() { # PID WORD: alive, and its command line holds WORD (so not a reused PID)
  [[ -n ${1:-} && -r /proc/$1/cmdline ]] && alive_pid "$1" \
    && [[ "$(tr '\0' ' ' <"/proc/$1/cmdline")" == *"$2"* ]]
}
remember() { echo "$2 $3" >"$BACKENDS_DIR/$1/started"; } # NAME PID WORD: `up` started it

wait_for() { # NAME SECONDS PID CHECK: poll CHECK; give up when PID (if any) dies, or at SECONDS
  local name=$1 secs=$2 pid=$3 check=$4 deadline
  deadline=$(($(date +%s) + secs))
  until "$check" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! alive_pid "$pid"; then
      say "$name: its server (pid $pid) exited before answering"
      return 1
    fi
    if (($(date +%s) >= deadline)); then
      say "$name: no answer after ${secs}s (listener on port ${PORT[$name]}: $(listener "${PORT[$name]}"))"
      return 1
    fi
    sleep 0.1
  done
}

# ----------------------------------------------------------------------------- postgres
# The distribution's cluster. Admin SQL as the postgres superuser: over TCP where trusted, else
# through the unix socket (peer authentication, as on a fresh install).
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }
pg_admin() {
  PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -v ON_ERROR_STOP=1 -tAq "$@" 2>/dev/null \
    || PGCONNECT_TIMEOUT=3 runuser -u postgres -- psql -p 5432 -d postgres -v ON_ERROR_STOP=1 -tAq "$@"
}
postgres_alive() { [[ "$(pg_admin -c 'select 1' 2>/dev/null)" == 1 ]]; }
postgres_ready() {
  [[ "$(PGPASSWORD=$DB_PASS PGCONNECT_TIMEOUT=2 timeout 3 psql -h 127.0.0.1 -p 5432 -U $DB_USER -d $DB -w -tAqc 'select 1' 2>/dev/null)" == 1 ]]
}
postgres_packages() { command -v pg_ctlcluster >/dev/null && [[ -n $(pg_version) ]] || echo postgresql; }
postgres_start() {
  local version pid
  version=$(pg_version)
  [[ -n $version ]] || { say "postgres: no cluster under /etc/postgresql"; return 1; }
  # pg_ctlcluster waits a while after the server is up: start it aside and poll ourselves.
  nohup pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    </dev/null >>"$BACKENDS_DIR/postgres/start.log" 2>&1 9>&- &
  wait_for postgres "$BACKENDS_TIMEOUT" "" postgres_alive || return 1
  pid=$(head -n 1 "/var/lib/postgresql/$version/main/postmaster.pid" 2>/dev/null)
  remember postgres "${pid:-$(listener 5432)}" postgres
}
postgres_setup() {
  pg_admin -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
        CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS';
      ELSE ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASS'; END IF; END \$\$;" || return 1
  [[ "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" == 1 ]] \
    || pg_admin -c "CREATE DATABASE $DB OWNER $DB_USER"
}
postgres_exports() { echo "export TEST_POSTGRES_URL='postgresql+psycopg://$DB_USER:$DB_PASS@127.0.0.1:5432/$DB'"; }
postgres_logs() { echo "$BACKENDS_DIR/postgres/start.log /var/log/postgresql/postgresql-$(pg_version)-main.log"; }

# ----------------------------------------------------------------------------- mariadb
# Admin SQL as root: over TCP where root has no password, else through the unix socket
# (unix_socket authentication, as on a fresh install).
my_admin() {
  mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P 3306 -u root --connect-timeout=3 -N -B -e "$1" 2>/dev/null \
    || mariadb -u root --connect-timeout=3 -N -B -e "$1"
}
# `mariadb-admin ping` succeeds on "Access denied" too: the server answers.
mariadb_alive() { timeout 4 mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P 3306 --connect-timeout=2 -u root ping; }
mariadb_ready() {
  [[ "$(timeout 4 mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P 3306 --connect-timeout=2 \
      -u $DB_USER -p$DB_PASS -N -B -e 'select 1' $DB 2>/dev/null)" == 1 ]]
}
mariadb_packages() { [[ -x /usr/sbin/mariadbd ]] && command -v mariadb-admin >/dev/null || echo mariadb-server mariadb-client; }
mariadb_start() {
  local pid
  install -d -o mysql -g mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd \
    </dev/null >>"$BACKENDS_DIR/mariadb/start.log" 2>&1 9>&- || return 1
  wait_for mariadb "$BACKENDS_TIMEOUT" "" mariadb_alive || return 1
  pid=$(cat /run/mysqld/mysqld.pid 2>/dev/null)
  remember mariadb "${pid:-$(listener 3306)}" mariadbd
}
mariadb_setup() {
  local host sql="CREATE DATABASE IF NOT EXISTS $DB;"
  # With skip-name-resolve a TCP client from 127.0.0.1 is '127.0.0.1', not 'localhost'.
  for host in 127.0.0.1 ::1 localhost; do
    sql+="CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASS';"
    sql+="ALTER USER '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASS';"
    # scheduler_test and scheduler_test_* (a database per test worker)
    sql+="GRANT ALL ON \`${DB//_/\\_}%\`.* TO '$DB_USER'@'$host';"
  done
  my_admin "$sql"
}
mariadb_exports() { echo "export TEST_MYSQL_URL='mysql+pymysql://$DB_USER:$DB_PASS@127.0.0.1:3306/$DB'"; }
mariadb_logs() { echo "$BACKENDS_DIR/mariadb/start.log /var/log/mysql/error.log"; }

# ----------------------------------------------------------------------------- redis
redis_alive() { [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "${PORT[redis]}" ping 2>/dev/null)" == PONG ]]; }
redis_ready() { redis_alive; }
redis_packages() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null || echo redis-server redis-tools; }
redis_start() {
  local dir=$BACKENDS_DIR/redis
  mkdir -p "$dir/data"
  redis-server --daemonize yes --bind 127.0.0.1 --port "${PORT[redis]}" --save "" --appendonly no \
    --dir "$dir/data" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
    </dev/null >>"$dir/start.log" 2>&1 9>&- || return 1
  wait_for redis "$BACKENDS_TIMEOUT" "" redis_alive || return 1
  remember redis "$(cat "$dir/redis.pid" 2>/dev/null || listener "${PORT[redis]}")" redis-server
}
redis_setup() { :; }
redis_exports() { echo "export TEST_REDIS_URL='redis://127.0.0.1:${PORT[redis]}/15'"; }
redis_logs() { echo "$BACKENDS_DIR/redis/start.log $BACKENDS_DIR/redis/redis.log"; }

# ----------------------------------------------------------------------------- zookeeper
# `ruok` answers before the server serves; `srvr` shows "Mode:" once it does.
zookeeper_alive() {
  [[ "$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/${PORT[zookeeper]} && printf srvr >&3 && cat <&3" 2>/dev/null)" == *"Mode: "* ]]
}
zookeeper_ready() { zookeeper_alive; }
zookeeper_packages() {
  [[ -f /usr/share/java/zookeeper.jar ]] || echo zookeeper
  command -v java >/dev/null || echo default-jre-headless
}
zookeeper_start() {
  local dir=$BACKENDS_DIR/zookeeper
  mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir/data
clientPort=${PORT[zookeeper]}
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf
EOF
  # The jar's manifest Class-Path brings its Debian dependencies; slf4j-simple logs to stderr.
  (cd "$dir" && exec nohup java -Xmx256m -XX:+UseSerialGC -Dzookeeper.jmx.log4j.disable=true \
    -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
    org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
    </dev/null >"$dir/zookeeper.log" 2>&1 9>&-) &
  remember zookeeper $! ZooKeeperServerMain
}
zookeeper_setup() { :; }
zookeeper_exports() { echo "export TEST_ZOOKEEPER_HOSTS='127.0.0.1:${PORT[zookeeper]}'"; }
zookeeper_logs() { echo "$BACKENDS_DIR/zookeeper/zookeeper.log"; }

# ----------------------------------------------------------------------------- mongodb (nx-27017)
NX_VENV=$BACKENDS_OPT/nx-27017
# OP_MSG {hello: 1} then {buildInfo: 1}, hand-encoded for the system python (no driver needed,
# so a server already running is recognised before anything is installed). Prints `nx-27017`
# for the emulator, `real` otherwise; fails when nothing answers as MongoDB.
mongodb_probe() {
  timeout 5 python3 - "${PORT[mongodb]}" <<'EOF'
import socket, struct, sys

def bson(command):
    body = b"\x10" + command.encode() + b"\x00" + struct.pack("<i", 1)
    body += b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    return struct.pack("<i", len(body) + 5) + body + b"\x00"

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
replies = []
for request_id, command in enumerate(("hello", "buildInfo"), 1):
    payload = struct.pack("<I", 0) + b"\x00" + bson(command)
    sock.sendall(struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload)
    data = b""
    while len(data) < 4 or len(data) < struct.unpack("<i", data[:4])[0]:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        data += chunk
    replies.append(data)
ok = (b"\x10ok\x00" + struct.pack("<i", 1), b"\x01ok\x00" + struct.pack("<d", 1.0))
if not any(flag in replies[0] for flag in ok):
    sys.exit("no ok in the hello reply")
print("nx-27017" if b"nx_27017" in replies[1] else "real")
EOF
}
mongodb_alive() { mongodb_probe >/dev/null; }
mongodb_ready() { mongodb_alive; }
mongodb_packages() { mongodb_installed || "$BACKENDS_PYTHON" -c 'import ensurepip' 2>/dev/null || echo python3-venv; }
mongodb_installed() { [[ -x $NX_VENV/bin/nx-27017 && -f $NX_VENV/.installed-$NX_VERSION ]]; }
mongodb_install() {
  rm -rf "$NX_VENV" && mkdir -p "$BACKENDS_OPT" \
    && "$BACKENDS_PYTHON" -m venv "$NX_VENV" \
    && "$NX_VENV/bin/pip" install -q --disable-pip-version-check "nx-27017==$NX_VERSION" \
    && touch "$NX_VENV/.installed-$NX_VERSION"
}
mongodb_start() {
  local dir=$BACKENDS_DIR/mongodb
  mkdir -p "$dir/data"
  (cd "$dir" && exec nohup "$NX_VENV/bin/nx-27017" --host 127.0.0.1 -p "${PORT[mongodb]}" \
    --data-dir "$dir/data" --log-file "$dir/nx-27017.log" --pid-file "$dir/nx-27017.pid" \
    </dev/null >"$dir/stdout.log" 2>&1 9>&-) &
  remember mongodb $! nx-27017
}
mongodb_setup() { :; }
mongodb_exports() {
  local kind
  kind=$(mongodb_probe 2>/dev/null)
  echo "export TEST_MONGODB_URL='mongodb://127.0.0.1:${PORT[mongodb]}/$DB'"
  if [[ $kind == real ]]; then
    echo "export TEST_MONGODB_SERVER='real'"
  else
    echo "export TEST_MONGODB_SERVER='emulator:nx-27017-$NX_VERSION'"
  fi
}
mongodb_logs() { echo "$BACKENDS_DIR/mongodb/install.log $BACKENDS_DIR/mongodb/stdout.log $BACKENDS_DIR/mongodb/nx-27017.log"; }

# ----------------------------------------------------------------------------- rethinkdb (reqlite)
REQLITE_DIR=$BACKENDS_OPT/reqlite
# The V1_0 handshake: the magic number; the server answers {"success":true,...}. A real server
# also names its server_version; reqlite does not.
rethinkdb_handshake() {
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/${PORT[rethinkdb]} && printf '\xc3\xbd\xc2\x34' >&3 \
    && IFS= read -r -d '' -t 2 answer <&3; printf %s \"\$answer\"" 2>/dev/null
}
rethinkdb_alive() { [[ "$(rethinkdb_handshake)" == *'"success":true'* ]]; }
rethinkdb_ready() { rethinkdb_alive; }
rethinkdb_packages() { command -v node >/dev/null && command -v npm >/dev/null || echo nodejs npm; }
rethinkdb_installed() { [[ -f $REQLITE_DIR/launch.js && -f $REQLITE_DIR/.installed-$REQLITE_VERSION ]]; }
rethinkdb_install() {
  rm -rf "$REQLITE_DIR" && mkdir -p "$REQLITE_DIR" \
    && npm install --prefix "$REQLITE_DIR" --no-audit --no-fund --no-save --loglevel=error "reqlite@$REQLITE_VERSION" \
    && rethinkdb_patch && rethinkdb_launcher >"$REQLITE_DIR/launch.js" \
    && touch "$REQLITE_DIR/.installed-$REQLITE_VERSION"
}
# reqlite 2.3.0 answers NOREPLY_WAIT with an empty SUCCESS_ATOM instead of WAIT_COMPLETE, and the
# Python driver's close() (which RethinkDBJobStore.shutdown() calls) then raises IndexError.
rethinkdb_patch() {
  local f=$REQLITE_DIR/node_modules/reqlite/lib/connection.js
  sed -i '/queryType === queryTypes.NOREPLY_WAIT/,/self.send/ s/ResponseType.SUCCESS_ATOM/ResponseType.WAIT_COMPLETE/' "$f" \
    && grep -A3 'queryType === queryTypes.NOREPLY_WAIT' "$f" | grep -q 'ResponseType.WAIT_COMPLETE' \
    || { echo "could not patch NOREPLY_WAIT in $f" >&2; return 1; }
}
# reqlite's own bin/reqlite listens on every interface; this one listens on 127.0.0.1 only.
rethinkdb_launcher() {
  cat <<'EOF'
var net = require('net');
var port = parseInt(process.env.REQLITE_PORT || '28015', 10);
var listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (p, cb) { return listen.call(this, p, '127.0.0.1', cb); };
var Server = require(__dirname + '/node_modules/reqlite/lib/index.js');
var server = new Server({'driver-port': port, silent: true});
server._server.on('listening', function () { console.error('reqlite listening on 127.0.0.1:' + port); });
server._server.on('error', function (e) { console.error('reqlite: ' + e); process.exit(1); });
process.on('SIGTERM', function () { process.exit(0); });
process.on('SIGINT', function () { process.exit(0); });
EOF
}
rethinkdb_start() {
  local dir=$BACKENDS_DIR/rethinkdb
  (cd "$dir" && REQLITE_PORT=${PORT[rethinkdb]} exec nohup node "$REQLITE_DIR/launch.js" \
    </dev/null >"$dir/reqlite.log" 2>&1 9>&-) &
  remember rethinkdb $! launch.js
}
rethinkdb_setup() { :; }
rethinkdb_exports() {
  echo "export TEST_RETHINKDB_URL='rethinkdb://127.0.0.1:${PORT[rethinkdb]}/$DB'"
  if [[ "$(rethinkdb_handshake)" == *'"server_version"'* ]]; then
    echo "export TEST_RETHINKDB_SERVER='real'"
  else
    echo "export TEST_RETHINKDB_SERVER='emulator:reqlite-$REQLITE_VERSION'"
  fi
}
rethinkdb_logs() { echo "$BACKENDS_DIR/rethinkdb/install.log $BACKENDS_DIR/rethinkdb/reqlite.log"; }

# ----------------------------------------------------------------------------- commands
canonical() {
  case $1 in
    postgres | postgresql | pg) echo postgres ;;
    mariadb | mysql) echo mariadb ;;
    redis) echo redis ;;
    zookeeper | zk) echo zookeeper ;;
    mongodb | mongo) echo mongodb ;;
    rethinkdb | rethink) echo rethinkdb ;;
    *) return 1 ;;
  esac
}

select_names() { # NAME...: sets NAMES, canonical, in the order of ALL
  local n c wanted=" "
  (($#)) || set -- "${ALL[@]}"
  for n in "$@"; do
    c=$(canonical "$n") || fail "unknown backend '$n' (known: ${ALL[*]})"
    wanted+="$c "
  done
  NAMES=()
  for n in "${ALL[@]}"; do [[ $wanted == *" $n "* ]] && NAMES+=("$n"); done
}

lock() { # one `up` or `down` at a time
  mkdir -p "$BACKENDS_DIR"
  exec 9>"$BACKENDS_DIR/.lock"
  flock -w 600 9 || fail "could not lock $BACKENDS_DIR/.lock"
}

needs_install() { declare -F "$1_installed" >/dev/null && ! "$1_installed"; }

install_missing() { # NAME...: one apt-get for the distribution's packages; pip and npm beside it
  local n packages=() pids=() steps=() i failed=0 apt_pid=""
  for n in "$@"; do
    # shellcheck disable=SC2207
    packages+=($("${n}_packages"))
  done
  if ((${#packages[@]})); then
    say "apt-get install ${packages[*]} (log: $BACKENDS_DIR/apt.log)"
    (
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q && apt-get install -y -q --no-install-recommends "${packages[@]}"
    ) </dev/null >"$BACKENDS_DIR/apt.log" 2>&1 9>&- &
    apt_pid=$!
    pids+=("$apt_pid") && steps+=("apt-get:$BACKENDS_DIR/apt.log")
  fi
  for n in "$@"; do
    needs_install "$n" || continue
    say "$n: installing the emulator under $BACKENDS_OPT (log: $BACKENDS_DIR/$n/install.log)"
    (
      # npm or the venv module may come from the apt-get above: let it finish first
      [[ -n $apt_pid ]] && while kill -0 "$apt_pid" 2>/dev/null; do sleep 0.5; done
      "${n}_install"
    ) </dev/null >"$BACKENDS_DIR/$n/install.log" 2>&1 9>&- &
    pids+=($!) && steps+=("$n:$BACKENDS_DIR/$n/install.log")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      say "installing ${steps[$i]%%:*} FAILED"
      show_logs "${steps[$i]#*:}"
      failed=1
    fi
  done
  ((failed == 0))
}

cmd_up() {
  local t0 n pid word todo=()
  t0=$(now)
  select_names "$@"
  lock
  for n in "${NAMES[@]}"; do
    mkdir -p "$BACKENDS_DIR/$n"
    "${n}_ready" >/dev/null 2>&1 && continue # answers as the tests need it: nothing to do
    todo+=("$n")
    if [[ -f $BACKENDS_DIR/$n/started ]] && read -r pid word <"$BACKENDS_DIR/$n/started" \
      && ! ours "$pid" "$word"; then
      rm -f "$BACKENDS_DIR/$n/started" # a server we started once, gone since
    fi
  done
  if ((${#todo[@]})); then
    say "to bring up: ${todo[*]}"
    install_missing "${todo[@]}" || fail "installation failed"
    for n in "${todo[@]}"; do
      "${n}_alive" >/dev/null 2>&1 && continue # running: only its setup is missing
      if port_open "${PORT[$n]}"; then
        pid=$(listener "${PORT[$n]}")
        say "$n: port ${PORT[$n]} is held by pid ${pid:-?}, which does not answer as $n yet; waiting for it"
      else
        say "$n: starting"
        # shellcheck disable=SC2046
        "${n}_start" || { show_logs $("${n}_logs"); fail "$n: could not be started"; }
      fi
    done
    for n in "${todo[@]}"; do
      pid=""
      [[ -f $BACKENDS_DIR/$n/started ]] && read -r pid _ <"$BACKENDS_DIR/$n/started"
      # shellcheck disable=SC2046
      wait_for "$n" "$BACKENDS_TIMEOUT" "$pid" "${n}_alive" || { show_logs $("${n}_logs"); fail "$n: not ready"; }
      "${n}_setup" >>"$BACKENDS_DIR/$n/setup.log" 2>&1 \
        || { show_logs "$BACKENDS_DIR/$n/setup.log"; fail "$n: creating the test role/database failed"; }
      wait_for "$n" 10 "" "${n}_ready" || { show_logs "$BACKENDS_DIR/$n/setup.log"; fail "$n: answers, but not as the tests need"; }
      say "$n: ready at +$(elapsed "$t0")s"
    done
  fi
  for n in "${NAMES[@]}"; do "${n}_exports"; done
  say "ready: ${NAMES[*]} in $(elapsed "$t0")s"
}

cmd_status() {
  local n state how pid word lp kind
  select_names "$@"
  for n in "${NAMES[@]}"; do
    if "${n}_ready" >/dev/null 2>&1; then
      state=UP
    elif "${n}_alive" >/dev/null 2>&1; then
      state=NOT-SET-UP
    else
      state=DOWN
    fi
    how=""
    lp=$(listener "${PORT[$n]}")
    if [[ -f $BACKENDS_DIR/$n/started ]] && read -r pid word <"$BACKENDS_DIR/$n/started" && ours "$pid" "$word"; then
      how="started by scripts/services.sh, pid $pid"
    elif [[ -n $lp ]]; then
      how="already running (pid $lp), left alone"
    fi
    if [[ $state == UP && $n == mongodb ]]; then
      kind=$(mongodb_probe 2>/dev/null)
      [[ $kind == real ]] && how+="; MongoDB" || how+="; EMULATOR nx-27017, not MongoDB"
    elif [[ $state == UP && $n == rethinkdb ]]; then
      [[ "$(rethinkdb_handshake)" == *server_version* ]] && how+="; RethinkDB" || how+="; EMULATOR reqlite, not RethinkDB"
    fi
    printf '%-10s %-10s 127.0.0.1:%-6s %s\n' "$n" "$state" "${PORT[$n]}" "${how#; }"
  done
}

cmd_down() {
  local i n pid word signal stopped=0 failed=0
  select_names "$@"
  lock
  for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do
    n=${NAMES[$i]}
    [[ -f $BACKENDS_DIR/$n/started ]] || continue
    read -r pid word <"$BACKENDS_DIR/$n/started"
    if ! ours "$pid" "$word"; then
      say "$n: pid $pid ($word) is gone; nothing to stop"
      rm -f "$BACKENDS_DIR/$n/started"
      continue
    fi
    signal=TERM
    [[ $n == postgres ]] && signal=INT # the postmaster's fast shutdown
    say "$n: stopping pid $pid"
    kill -s "$signal" "$pid" 2>/dev/null
    for ((stopped = 0; stopped < BACKENDS_TIMEOUT * 10; stopped++)); do
      alive_pid "$pid" || break
      sleep 0.1
    done
    if alive_pid "$pid"; then
      case $n in
        zookeeper | mongodb | rethinkdb) kill -s KILL "$pid" 2>/dev/null && sleep 0.2 ;;
        *) say "$n: pid $pid still running after ${BACKENDS_TIMEOUT}s"; failed=1; continue ;;
      esac
    fi
    rm -f "$BACKENDS_DIR/$n/started"
  done
  ((failed == 0)) || fail "some servers did not stop"
}

COMMAND=${1:-}
case $COMMAND in
  up | status | down) shift && "cmd_$COMMAND" "$@" ;;
  *) sed -n '2,13p' "$0" >&2 && exit 2 ;;
esac
