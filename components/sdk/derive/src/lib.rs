//! `#[derive(Describe)]`: a struct's JSON Schema from its serialized fields
//! and their doc comments, for the Souk guest SDK (`souk_sdk::Describe`;
//! see `souk_sdk::schema` for what the attributes mean).
//!
//! A separate crate only because derives must be: the trait, the schema
//! builder and their documentation live in the SDK.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::{
    Attribute, Data, DeriveInput, Expr, Fields, GenericParam, LitStr, Type, parse_macro_input,
    parse_quote,
};

/// Implements `souk_sdk::schema::Describe` for a struct with named fields.
#[proc_macro_derive(Describe, attributes(describe))]
pub fn derive_describe(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// What `#[describe(...)]` says about a field or the struct.
#[derive(Default)]
struct Options {
    /// `with = Type`: the field's schema is that type's.
    with: Option<Type>,
    /// `schema = expr`: the field's schema is this expression's value.
    schema: Option<Expr>,
    /// `name = "X"`: the struct's schema name.
    name: Option<LitStr>,
}

/// What `#[serde(...)]` says that changes the schema.
#[derive(Default)]
struct Serde {
    skip: bool,
    flatten: bool,
    /// `skip_serializing_if`: the field may be absent.
    optional: bool,
}

fn expand(mut input: DeriveInput) -> syn::Result<Tokens> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "Describe is derived for structs only",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "Describe is derived for structs with named fields only",
        ));
    };

    let mut properties = Vec::new();
    for field in &fields.named {
        let serde = serde_options(&field.attrs)?;
        if serde.skip {
            continue;
        }
        let options = describe_options(&field.attrs)?;
        let ty = &field.ty;
        if serde.flatten {
            properties.push(quote! {
                object.flatten(<#ty as ::souk_sdk::schema::Describe>::describe(schemas));
            });
            continue;
        }
        let name = field
            .ident
            .as_ref()
            .map(|ident| ident.to_string().trim_start_matches("r#").to_owned())
            .unwrap_or_default();
        let mut schema = match (&options.with, &options.schema) {
            (Some(with), _) => quote! { schemas.of::<#with>() },
            (None, Some(expr)) => quote! { (#expr) },
            (None, None) => quote! { schemas.of::<#ty>() },
        };
        if (options.with.is_some() || options.schema.is_some()) && is_option(ty) {
            schema = quote! { #schema.nullable() };
        }
        if let Some(doc) = doc(&field.attrs) {
            schema = quote! { #schema.doc(#doc) };
        }
        let required = !serde.optional;
        properties.push(quote! {
            object.property(#name, #schema, #required);
        });
    }

    let options = describe_options(&input.attrs)?;
    let generic = input
        .generics
        .params
        .iter()
        .any(|param| matches!(param, GenericParam::Type(_)));
    let name = match (&options.name, generic) {
        (Some(name), _) => quote! { ::core::option::Option::Some(#name) },
        (None, true) => quote! { ::core::option::Option::None },
        (None, false) => {
            let text = input.ident.to_string();
            quote! { ::core::option::Option::Some(#text) }
        }
    };
    let struct_doc = doc(&input.attrs).map(|doc| quote! { .doc(#doc) });

    let type_params: Vec<_> = input
        .generics
        .type_params()
        .map(|param| param.ident.clone())
        .collect();
    let where_clause = input.generics.make_where_clause();
    for param in type_params {
        where_clause
            .predicates
            .push(parse_quote! { #param: ::souk_sdk::schema::Describe });
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::souk_sdk::schema::Describe for #ident #ty_generics #where_clause {
            const NAME: ::core::option::Option<&'static str> = #name;

            fn describe(
                schemas: &mut ::souk_sdk::schema::Schemas,
            ) -> ::souk_sdk::schema::Schema {
                let mut object = ::souk_sdk::schema::Object::new();
                #(#properties)*
                object.into_schema() #struct_doc
            }
        }
    })
}

/// Whether `ty` is spelled `Option<...>` (serde writes `None` as `null`).
fn is_option(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Option"),
        _ => false,
    }
}

/// The doc comment as one description: lines joined with spaces, blank
/// lines kept as paragraph breaks.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(value) => match &value.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut text = String::new();
    for line in lines {
        if line.is_empty() {
            text.push_str("\n\n");
        } else {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push(' ');
            }
            text.push_str(&line);
        }
    }
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn describe_options(attrs: &[Attribute]) -> syn::Result<Options> {
    let mut options = Options::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("describe")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("with") {
                options.with = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("schema") {
                options.schema = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("name") {
                options.name = Some(meta.value()?.parse()?);
            } else {
                return Err(meta.error("expected `with = Type`, `schema = expr` or `name = \"X\"`"));
            }
            Ok(())
        })?;
    }
    Ok(options)
}

fn serde_options(attrs: &[Attribute]) -> syn::Result<Serde> {
    let mut serde = Serde::default();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                serde.skip = true;
            } else if meta.path.is_ident("flatten") {
                serde.flatten = true;
            } else if meta.path.is_ident("skip_serializing_if") {
                serde.optional = true;
                let _: LitStr = meta.value()?.parse()?;
            } else if meta.path.is_ident("rename") {
                return Err(meta.error("Describe does not follow serde renames"));
            } else if meta.input.peek(syn::Token![=]) {
                // Other serde options take a value: skip it.
                let _: Expr = meta.value()?.parse()?;
            }
            Ok(())
        })?;
    }
    Ok(serde)
}
