--
-- The database the corpus's migration sets run against (pg_dump
-- --schema-only style): every layout directory is one migration set,
-- checked against this schema.
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TYPE public.order_status AS ENUM (
    'new',
    'paid',
    'shipped'
);

CREATE TABLE public.users (
    id bigint NOT NULL,
    email character varying(100) NOT NULL,
    name text,
    legacy text,
    status text DEFAULT 'active'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now()
);

CREATE TABLE public.orders (
    id bigint NOT NULL,
    user_id bigint,
    total numeric(10,2),
    note character varying(50),
    status public.order_status DEFAULT 'new'::public.order_status NOT NULL,
    CONSTRAINT orders_total_not_null CHECK ((total IS NOT NULL))
);

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    entry text
);

CREATE VIEW public.user_emails AS
 SELECT users.id,
    users.email
   FROM public.users;

CREATE MATERIALIZED VIEW public.order_totals AS
 SELECT orders.user_id,
    sum(orders.total) AS total
   FROM public.orders
  GROUP BY orders.user_id
  WITH NO DATA;

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

CREATE INDEX orders_user_id_idx ON public.orders USING btree (user_id);

CREATE UNIQUE INDEX order_totals_user_id_idx ON public.order_totals USING btree (user_id);
