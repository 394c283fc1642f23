use kustomer_webhooks::Extra;

#[kustomer_webhooks::model]
pub struct Contact {
    #[json("score", any)]
    pub score: Option<i64>,
    pub extra: Extra,
}

fn main() {}
