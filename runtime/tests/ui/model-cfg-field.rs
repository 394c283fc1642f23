use kustomer_webhooks::{Extra, Str};

#[kustomer_webhooks::model]
pub struct Contact {
    #[json("email")]
    pub email: Option<Str>,
    #[cfg(test)]
    #[json("phone")]
    pub phone: Option<Str>,
    pub extra: Extra,
}

fn main() {}

#[kustomer_webhooks::model]
pub struct Gated {
    #[cfg_attr(test, cfg(unix))]
    #[json("phone")]
    pub phone: Option<Str>,
    pub extra: Extra,
}

#[kustomer_webhooks::model]
pub struct NestedGate {
    #[cfg_attr(test, cfg_attr(test, cfg(unix)))]
    #[json("fax")]
    pub fax: Option<Str>,
    pub extra: Extra,
}
