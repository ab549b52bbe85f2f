// Command order runs the order service: placement, payment, timeout,
// cancel and refund, and the warehouse's shipping requests.
//
//	order --listen 127.0.0.1:8081 --dsn 'root@tcp(127.0.0.1:3306)/order' --namesrv 127.0.0.1:9876 \
//	  --secrets secrets.json --provider http://127.0.0.1:9000 --public-url http://127.0.0.1:8081 \
//	  --order-timeout 30m --seckill-order-rate 500
package main

import (
	"qianlang.io/services/daemon"
	"qianlang.io/services/order"
)

func main() { daemon.Main(order.Spec()) }
