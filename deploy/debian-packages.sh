#!/bin/sh
# Installs the Debian packages the platform runs on, when any is missing:
# MariaDB, Redis, ZooKeeper (with a JRE), nginx with the Lua module. The
# packages' own services are not started; qlstack and the tests start their
# own instances on loopback.
set -eu
need=""
[ -x /usr/sbin/mariadbd ] || need="$need mariadb-server mariadb-client"
[ -x /usr/bin/redis-server ] || need="$need redis-server"
[ -f /usr/share/java/zookeeper.jar ] || need="$need zookeeper"
command -v java >/dev/null 2>&1 || need="$need default-jre-headless"
[ -x /usr/sbin/nginx ] || need="$need nginx"
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need="$need libnginx-mod-http-lua"
[ -z "$need" ] && exit 0
echo "installing Debian packages:$need"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
