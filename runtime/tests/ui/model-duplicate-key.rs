use kustomer_webhooks::{Extra, Str};

#[kustomer_webhooks::model]
pub struct Contact {
    #[json("email")]
    pub email: Option<Str>,
    #[json("email")]
    pub email_again: Option<bool>,
    pub extra: Extra,
}

fn main() {}
