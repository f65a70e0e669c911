//! The real client against the real sandbox over HTTP, and notifications delivered to a
//! small receiver that checks them with the server's `NotificationVerifier`.

mod helpers;
mod login;
mod notifications;
mod pay;
