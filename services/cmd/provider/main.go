// Command provider runs the payment, SMS and logistics provider simulator.
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/provider"
)

func main() {
	daemon.Main(daemon.Spec{Name: "provider", Queue: false, Migrations: provider.Migrations, Setup: provider.Setup})
}
