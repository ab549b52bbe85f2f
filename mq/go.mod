module qianlang.io/mq

go 1.26.8

require (
	github.com/stretchr/testify v1.12.1
	go.etcd.io/raft/v3 v3.6.0
	go.yaml.in/yaml/v3 v3.0.5
	golang.org/x/sys v0.48.0
	google.golang.org/protobuf v1.33.0
)

require (
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
)
