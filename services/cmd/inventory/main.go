// Command inventory runs the inventory service: SKUs, stock locks and the
// stock moves that follow the orders' events.
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/inventory"
)

func main() {
	daemon.Main(daemon.Spec{Name: "inventory", Queue: true, Migrations: inventory.Migrations, Setup: inventory.Setup})
}
