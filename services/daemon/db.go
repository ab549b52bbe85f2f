package daemon

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ParseDSN parses a MariaDB DSN and checks it names a database.
func ParseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		return nil, errors.New("no database name")
	}
	return cfg, nil
}

// OpenDB opens the service's database, creating it when missing, waiting
// up to a minute for the server to answer.
func OpenDB(ctx context.Context, dsn string) (*gorm.DB, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	name := cfg.DBName
	server := cfg.Clone()
	server.DBName = ""
	if err := createDatabase(ctx, server.FormatDSN(), name); err != nil {
		return nil, err
	}
	db, err := gorm.Open(gormmysql.Open(cfg.FormatDSN()), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", name, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(64)
	sqlDB.SetMaxIdleConns(64)
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}

func createDatabase(ctx context.Context, serverDSN, name string) error {
	db, err := sql.Open("mysql", serverDSN)
	if err != nil {
		return fmt.Errorf("database server: %w", err)
	}
	defer db.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		err = db.PingContext(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("database server: %w", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
