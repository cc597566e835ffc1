//! secret-portal: the self-service portal where credential managers of WMDA partner
//! organisations manage the client secrets of their OAuth 2.0 applications.
//!
//! Layers, from the bottom up (DESIGN.md section 1): [`domain`] (pure rules), [`store`] (all
//! SQL), [`web`] (the only module that knows HTTP), and [`config`], [`startup`], [`telemetry`],
//! [`cli`] around them. `main.rs` only parses the command line and calls [`cli::run`].

pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod jobs;
pub mod mail;
pub mod oauth;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webhooks;
