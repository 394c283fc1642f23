//! `#[model]`: reads the struct, checks it, and hands the fields to the
//! runtime's `__model!` macro, which holds the logic.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::{
    Fields, GenericArgument, ItemStruct, LitStr, PathArguments, Type, parse2, spanned::Spanned,
};

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args, input.clone()) {
        Ok(out) => out,
        Err(e) => {
            let err = e.to_compile_error();
            let input = without_json_attributes(input);
            quote!(#input #err)
        }
    }
}

/// The struct as written, its fields' `#[json]` attributes left out: the
/// struct emitted beside an error, so that the one mistake is not followed
/// by "cannot find attribute `json`" for every field.
fn without_json_attributes(input: TokenStream) -> TokenStream {
    let Ok(mut item) = parse2::<ItemStruct>(input.clone()) else {
        return input;
    };
    for field in item.fields.iter_mut() {
        field.attrs.retain(|a| !a.path().is_ident("json"));
    }
    item.into_token_stream()
}

enum Kind {
    Opt,
    Null,
    Any,
    Req,
}

/// `#[model]`'s arguments: none, or `crate = "path"`, where the runtime is
/// reached under another name.
struct ModelArgs {
    krate: Option<syn::Path>,
}

impl syn::parse::Parse for ModelArgs {
    fn parse(input: syn::parse::ParseStream) -> syn::Result<Self> {
        let mut krate = None;
        while !input.is_empty() {
            let Some(token) = input.parse::<Option<syn::Token![crate]>>()? else {
                return Err(input.error("#[model] takes no arguments but `crate = \"path\"`"));
            };
            input.parse::<syn::Token![=]>()?;
            krate = Some(crate::handler::crate_path(
                input,
                krate.is_some(),
                token.span,
            )?);
            if !input.is_empty() {
                input.parse::<syn::Token![,]>()?;
            }
        }
        Ok(ModelArgs { krate })
    }
}

fn try_expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let krate = crate::handler::runtime_path(
        parse2::<ModelArgs>(args)?.krate.as_ref(),
        proc_macro2::Span::call_site(),
    );
    let item: ItemStruct = parse2(input)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "a model cannot be generic",
        ));
    }
    let Fields::Named(fields) = &item.fields else {
        return Err(syn::Error::new(
            item.fields.span(),
            "a model needs named fields",
        ));
    };
    let mut lines = Vec::new();
    let mut checks = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut index = 0u32;
    let mut extra_ty = None;
    // Each JSON key read so far, and the field it goes to.
    let mut keys: Vec<(String, &syn::Ident)> = Vec::new();
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let mut fail = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        if let Some(cfg) = field
            .attrs
            .iter()
            .find(|a| a.path().is_ident("cfg") || cfg_attr_with_cfg(a))
        {
            fail(syn::Error::new_spanned(
                cfg,
                "a model field cannot be `#[cfg]`-gated: the reading code names every field; \
                 leave the field in (it stays `None`, or its default, when the payload lacks the key), or gate the whole struct",
            ));
            continue;
        }
        if ident == "extra" {
            extra_ty = Some(&field.ty);
            continue;
        }
        match field_line(field, ident, index, &krate) {
            Ok((line, key, check)) => {
                if let Some((_, first)) = keys.iter().find(|(k, _)| *k == key.value()) {
                    fail(syn::Error::new_spanned(
                        &key,
                        format!(
                            "the JSON key {:?} is already read into `{first}`: each key goes to one field",
                            key.value()
                        ),
                    ));
                    continue;
                }
                keys.push((key.value(), ident));
                lines.push(line);
                checks.extend(check);
                index += 1;
            }
            Err(e) => fail(e),
        }
    }
    let missing_extra = || {
        syn::Error::new_spanned(
            &item.ident,
            "a model needs `pub extra: Extra` for the keys it does not know",
        )
    };
    let extra_ty = match (extra_ty, errors) {
        (Some(ty), None) => ty,
        (None, None) => return Err(missing_extra()),
        (Some(_), Some(e)) => return Err(e),
        (None, Some(mut e)) => {
            e.combine(missing_extra());
            return Err(e);
        }
    };
    let attrs = &item.attrs;
    let vis = &item.vis;
    let name = &item.ident;
    if !matches!(vis, syn::Visibility::Public(_)) {
        return Err(syn::Error::new_spanned(
            &item.ident,
            "a model struct must be `pub`",
        ));
    }
    // `extra` is declared by the macro; the struct as written must agree
    // (a mismatch is reported on the type written).
    let extra_check = quote_spanned! {extra_ty.span()=>
        #[allow(deprecated)]
        const _: fn(&#name) -> &#extra_ty = |m| &m.extra;
    };
    Ok(quote! {
        #krate::__model! {
            #(#attrs)*
            pub struct #name {
                #(#lines)*
            }
        }
        #extra_check
        #(#checks)*
    })
}

/// Whether `attr` is a `#[cfg_attr(…)]` that may expand to a `#[cfg]`
/// (written among its attributes, or in a `cfg_attr` among them).
fn cfg_attr_with_cfg(attr: &syn::Attribute) -> bool {
    fn gates(meta: &syn::Meta) -> bool {
        meta.path().is_ident("cfg")
            || meta.path().is_ident("cfg_attr")
                && meta.require_list().is_ok_and(|list| {
                    list.parse_args_with(
                        syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
                    )
                    .is_ok_and(|metas| metas.iter().skip(1).any(gates))
                })
    }
    attr.path().is_ident("cfg_attr") && gates(&attr.meta)
}

/// The `__model!` line of a field, and its JSON key.
fn field_line(
    field: &syn::Field,
    ident: &syn::Ident,
    index: u32,
    krate: &TokenStream,
) -> syn::Result<(TokenStream, LitStr, Option<TokenStream>)> {
    let (attrs, ty, vis) = (field.attrs.as_slice(), &field.ty, &field.vis);
    let mut key: Option<LitStr> = None;
    let mut nullable = false;
    let mut any = false;
    let mut docs = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("json") {
            attr.parse_args_with(|input: syn::parse::ParseStream| {
                key = Some(input.parse()?);
                while input.parse::<Option<syn::Token![,]>>()?.is_some() {
                    let flag: syn::Ident = input.parse()?;
                    if flag == "nullable" {
                        nullable = true;
                    } else if flag == "any" {
                        any = true;
                    } else {
                        return Err(syn::Error::new_spanned(
                            flag,
                            "expected `nullable` or `any`",
                        ));
                    }
                }
                Ok(())
            })?;
        } else {
            docs.push(attr.to_token_stream());
        }
    }
    let Some(key) = key else {
        return Err(syn::Error::new_spanned(
            ident,
            "every model field but `extra` needs #[json(\"key\")]",
        ));
    };
    let ty = ungrouped(ty);
    let inner = option_inner(ty);
    let (kind, ty) = match (inner, nullable, any) {
        (Some(_), _, true) => (Kind::Any, ty.clone()),
        (Some(t), true, false) => (Kind::Null, t.clone()),
        (Some(t), false, false) => (Kind::Opt, t.clone()),
        (None, false, false) => (Kind::Req, ty.clone()),
        (None, _, _) => {
            return Err(syn::Error::new_spanned(
                ty,
                "a `nullable` or `any` field must be an `Option<…>`",
            ));
        }
    };
    // An `any` field holds any JSON: its type, under whatever name, must
    // be `Option<Value>` (reported on the type written when it is not).
    let check = matches!(kind, Kind::Any).then(|| {
        quote_spanned! {ty.span()=>
            #[allow(deprecated)]
            const _: fn() = || {
                fn any_json<T: #krate::__private::AnyJson>() {}
                any_json::<#ty>();
            };
        }
    });
    let kind = match kind {
        Kind::Opt => quote!(opt),
        Kind::Null => quote!(null),
        Kind::Any => quote!(any),
        Kind::Req => quote!(req),
    };
    let index = proc_macro2::Literal::u32_unsuffixed(index);
    Ok((
        quote! { #(#docs)* #kind #index #key => #vis #ident: #ty, },
        key,
        check,
    ))
}

/// `ty` out of the invisible group a `macro_rules!` `$t:ty` fragment puts it
/// in, and out of parentheses.
fn ungrouped(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}

/// `T` when `ty` is `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ungrouped(ty) else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(ungrouped(t)),
        _ => None,
    }
}
