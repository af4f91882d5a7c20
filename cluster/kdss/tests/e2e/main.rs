//! End-to-end tests across real processes: masters, storage nodes and gateways started by
//! the harness, ksfs mounted through the kernel, S3 driven by the real aws cli and boto3.
//! Each test names the user-visible promise it checks.

mod balance;
mod capacity;
mod churn;
mod common;
mod disaster;
mod doors;
mod failover;
mod faults;
mod first_errors;
mod gc_kills;
mod grow;
mod health;
mod notify;
mod observability;
mod privileges;
mod racks;
mod repair;
mod sealed;
mod secrets;
mod space;
mod strays;
mod tls;
