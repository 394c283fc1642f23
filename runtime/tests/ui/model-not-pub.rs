// One mistake, one error: the fields' `#[json]` attributes add none.
use kustomer_webhooks::{Extra, Str};

#[kustomer_webhooks::model]
struct Contact {
    #[json("email")]
    pub email: Option<Str>,
    #[json("name")]
    pub name: Option<Str>,
    #[json("phone")]
    pub phone: Option<Str>,
    pub extra: Extra,
}

fn main() {}
