//! `#[kustomer_webhook]`: parse the arguments, check the function, expand.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemFn, LitStr, ReturnType, Token, Type, bracketed, parse2};

/// Every event name Kustomer documents. A handler naming another one is a
/// typo more often than not; events without a type go to an `OtherEvent`
/// handler.
pub const KNOWN_EVENTS: [&str; 12] = [
    "kustomer.conversation.create",
    "kustomer.conversation.update",
    "kustomer.customer.create",
    "kustomer.customer.update",
    "kustomer.message.create",
    "kustomer.message.update",
    "kustomer.team.create",
    "kustomer.team.update",
    "kustomer.user.create",
    "kustomer.user.update",
    "kustomer.tag.create",
    "kustomer.tag.update",
];

/// The attribute's arguments: none, `event = "…"`, or `events = ["…", …]`.
#[derive(Default)]
struct Args {
    events: Option<Vec<LitStr>>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            if args.events.is_some() {
                return Err(syn::Error::new_spanned(
                    &key,
                    "give the events once: `event = \"…\"` or `events = [\"…\", …]`",
                ));
            }
            input.parse::<Token![=]>()?;
            if key == "event" {
                let lit: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "expected the event name as a string: `event = \"kustomer.customer.update\"`")
                })?;
                args.events = Some(vec![lit]);
            } else if key == "events" {
                let content;
                bracketed!(content in input);
                let list = content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
                if list.is_empty() {
                    return Err(syn::Error::new_spanned(
                        &key,
                        "`events` needs at least one event name",
                    ));
                }
                args.events = Some(list.into_iter().collect());
            } else {
                return Err(syn::Error::new_spanned(
                    &key,
                    format!(
                        "unknown argument `{key}`: expected `event = \"…\"` or `events = [\"…\", …]`"
                    ),
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// Expands the attribute. On error the item is emitted unchanged next to a
/// `compile_error!`, so one mistake gives one error.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(args, item.clone()) {
        Ok(out) => out,
        Err(e) => {
            let e = e.to_compile_error();
            quote!(#item #e)
        }
    }
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let parsed_item: Item = parse2(item.clone())?;
    let Item::Fn(func) = parsed_item else {
        return Err(syn::Error::new(
            first_token_span(&item),
            "#[kustomer_webhook] goes on a function: `async fn on_update(event: CustomerUpdate) { … }`",
        ));
    };
    let mut errors = None;
    let args = match parse2::<Args>(args) {
        Ok(a) => a,
        Err(e) => {
            combine(&mut errors, e);
            Args::default()
        }
    };
    let sig = &func.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                &sig.generics,
                "a webhook handler cannot be generic: name the event type",
            ),
        );
    }
    if let Some(c) = &sig.constness {
        combine(
            &mut errors,
            syn::Error::new_spanned(c, "a webhook handler cannot be `const`"),
        );
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                u,
                "a webhook handler cannot be `unsafe`: the dispatcher calls it as a safe function",
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                abi,
                "a webhook handler is a Rust function: remove the `extern` ABI",
            ),
        );
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => combine(
                &mut errors,
                syn::Error::new_spanned(r, "a webhook handler is a free function, not a method"),
            ),
            FnArg::Typed(t) => types.push(&*t.ty),
        }
    }
    if types.is_empty() || types.len() > 2 {
        let span = if sig.inputs.is_empty() {
            sig.paren_token.span.join()
        } else {
            sig.inputs.span()
        };
        combine(
            &mut errors,
            syn::Error::new(
                span,
                format!(
                    "a webhook handler takes the event, and optionally `State<T>`: found {} parameter(s)",
                    types.len()
                ),
            ),
        );
    }
    let state_first = types.len() == 2 && is_state(types[0]) && !is_state(types[1]);
    if state_first {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                types[0],
                "the event comes first, then the shared state: `fn on_update(event: CustomerUpdate, state: State<T>)`",
            ),
        );
    } else if let Some(Type::Reference(r)) = types.first() {
        let inner = &r.elem;
        combine(
            &mut errors,
            syn::Error::new_spanned(
                r,
                format!(
                    "a webhook handler takes its event by value: `{}`, not a reference",
                    quote!(#inner)
                ),
            ),
        );
    }
    if let Some(state) = types.get(1)
        && !is_state(state)
        && !state_first
    {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                state,
                "the second parameter of a webhook handler is the shared state: `State<T>`",
            ),
        );
    }
    for lit in args.events.iter().flatten() {
        if let Err(e) = check_event_name(lit) {
            combine(&mut errors, e);
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    Ok(expansion(&func, &args, types[0]))
}

fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .find(|t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |t| t.span())
}

fn is_state(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => {
            p.path.segments.last().is_some_and(|s| s.ident == "State") && state_inner(ty).is_some()
        }
        _ => false,
    }
}

/// The documented event name `name` was probably meant to be: the same
/// resource and action up to case, a missing `kustomer.` prefix, a typo of
/// one or two letters, or a shortened resource (`convo`). The rule the
/// runtime's app-definition check follows too.
fn nearest_event(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('.').collect();
    if parts.first() == Some(&"kustomer") {
        parts.remove(0);
    }
    let [resource, action] = parts[..] else {
        return None;
    };
    let close = |a: &str, b: &str| {
        let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        strsim::levenshtein(a, b) <= 2 || common >= 4
    };
    KNOWN_EVENTS.iter().copied().find(|known| {
        let mut k = known.split('.').skip(1);
        matches!((k.next(), k.next()), (Some(r), Some(a)) if close(r, resource) && close(a, action))
    })
}

fn check_event_name(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    if KNOWN_EVENTS.contains(&name.as_str()) {
        return Ok(());
    }
    let mut msg = format!("unknown Kustomer event `{name}`");
    if let Some(k) = nearest_event(&name) {
        msg.push_str(&format!("; did you mean `{k}`?"));
    } else {
        msg.push_str("; events without a generated type, unknown names included, all go to the one handler taking `OtherEvent` (without `event = …`)");
    }
    Err(syn::Error::new_spanned(lit, msg))
}

fn expansion(func: &ItemFn, args: &Args, event_ty: &Type) -> TokenStream {
    let ident = &func.sig.ident;
    let rt = quote!(::kustomer_webhooks::__private);
    let event_span = event_ty.span();
    // Each type argument carries the span of the user's token, so that an
    // unmet requirement is reported there, and once.
    let event = quote_spanned!(event_span=> #event_ty);
    let result = match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => {
            let span = ty.span();
            quote_spanned!(span=> #ty)
        }
    };
    let state = func.sig.inputs.iter().nth(1).and_then(|a| match a {
        FnArg::Typed(t) => state_inner(&t.ty),
        FnArg::Receiver(_) => None,
    });
    let ctor = match (func.sig.asyncness.is_some(), &state) {
        (true, None) => quote!(async_handler::<#event, #result, _, _>),
        (true, Some(t)) => quote!(async_handler_with_state::<#event, #t, #result, _, _>),
        (false, None) => quote!(blocking_handler::<#event, #result, _>),
        (false, Some(t)) => quote!(blocking_handler_with_state::<#event, #t, #result, _>),
    };
    // Named events must be ones the parameter type holds.
    let names: Vec<&LitStr> = args.events.iter().flatten().collect();
    let name_checks = names.iter().map(|lit| {
        let msg = format!(
            "`{}` is not an event of this handler's parameter type",
            lit.value()
        );
        let span = lit.span();
        let ty = quote_spanned!(event_span=> <#event_ty as ::kustomer_webhooks::FromEvent>);
        quote_spanned! {span=>
            const _: () = ::core::assert!(#rt::lists(#ty::EVENTS, #lit), #msg);
        }
    });
    let only = if names.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        quote!(::core::option::Option::Some(&[#(#names),*]))
    };
    let name = ident.to_string();
    let span = ident.span();
    let make = quote_spanned! {span=>
        ::kustomer_webhooks::__private::#ctor(#ident, ::core::concat!(::core::module_path!(), "::", #name), #only)
    };
    quote! {
        #func

        #[doc(hidden)]
        const _: () = {
            #(#name_checks)*
            fn __kustomer_webhook_make() -> #rt::Registered {
                #make
            }
            #rt::inventory::submit! {
                #rt::Registration { make: __kustomer_webhook_make }
            }
        };
    }
}

/// `T` in a `State<T>` parameter type.
fn state_inner(ty: &Type) -> Option<TokenStream> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => {
            let span = t.span();
            Some(quote_spanned!(span=> #t))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(tokens: TokenStream) -> String {
        match syn::parse2::<syn::File>(tokens.clone()) {
            Ok(file) => prettyplease::unparse(&file),
            Err(_) => tokens.to_string(),
        }
    }

    #[test]
    fn expansion_of_an_async_handler() {
        let out = expand(
            quote!(),
            quote! {
                async fn on_update(event: CustomerUpdate) -> Result<(), MyError> { Ok(()) }
            },
        );
        insta::assert_snapshot!(pretty(out));
    }

    #[test]
    fn expansion_of_a_blocking_handler_with_state_and_named_events() {
        let out = expand(
            quote!(events = ["kustomer.customer.create", "kustomer.customer.update"]),
            quote! {
                fn on_customer(event: CustomerEvent, app: State<Arc<App>>) {}
            },
        );
        insta::assert_snapshot!(pretty(out));
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            quote!(event = "kustomer.custmer.update"),
            quote!(
                async fn f(e: CustomerUpdate) {}
            ),
        );
        let text = out.to_string();
        assert!(text.contains("async fn f"), "{text}");
        assert!(
            text.contains("did you mean `kustomer.customer.update`?"),
            "{text}"
        );
    }
}
