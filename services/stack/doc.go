// Package stack starts the whole platform on loopback and supervises it:
// the library behind `qlstack up` and `qlstack down` (platform contract
// §1).
//
// Every component is one row of componentTable: a process name, its
// binary, its ports, an argument builder, a readiness probe and its place
// in the start and stop order. The stack starts the rows stage by stage —
// MariaDB, Redis and ZooKeeper; the two NameServers; the Raft broker
// groups (then waits for a settled leader in every group on every
// NameServer and creates events.Topics); the provider; the business
// services; nginx last — and stops them the other way round: nginx, the
// services, the brokers, the NameServers, ZooKeeper, Redis, MariaDB.
//
// Each process runs in its own process group with its output appended to
// DIR/logs/<name>.log. One that exits while the stack runs is restarted
// at once (then with back-off while it keeps crashing), and stack.json is
// rewritten with its new pid.
//
// Ports are --base-port plus a fixed offset (PortPlan): namesrv-1/2 +1/+2,
// console +70 (reserved), nginx +80, provider +90, order..warehouse
// +101..+106 (+107..+110 reserved for seckill, analytics, qlcanal-1/2),
// ZooKeeper +181, MariaDB +306, Redis +379, broker n (broker-a-n0..n2,
// broker-b-n0..n2) +911+10n with its Raft port one above.
//
// The stack directory holds:
//
//	stack.json           the contract's description (mode 0600), written when ready
//	secrets.json         token_secret, admin_token, provider_secret, mysql_root_password (0600)
//	qlstack.pid          the launcher's pid, locked while it runs
//	qlstack.pids         every process's latest pid (to clean up after a killed launcher)
//	conf/                my.cnf, zoo.cfg, namesrv-*.conf, broker-*.conf
//	logs/<name>.log      each process's stdout and stderr
//	mariadb/ redis/ zookeeper/ broker-*/ nginx/   the data (nginx: config, Lua, logs, temp)
package stack
