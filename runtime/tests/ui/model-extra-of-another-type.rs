use std::collections::HashMap;

#[kustomer_webhooks::model]
pub struct Contact {
    #[json("email")]
    pub email: Option<kustomer_webhooks::Str>,
    pub extra: HashMap<String, String>,
}

fn main() {}
