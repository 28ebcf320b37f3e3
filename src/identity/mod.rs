//! Who people are: orgs, users, roles, passwords, and the secrets we issue.

pub mod accounts;
pub mod api_key;
pub mod email;
pub mod mac;
pub mod passwords;
pub mod scope;
pub mod secret;
