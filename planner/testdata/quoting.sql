--
-- A small pg_dump-style schema whose names need quoting: a table name with
-- a space and capitals, a column "Unit Price", and a column named user (a
-- reserved word). Also a table without a primary key (pagila has none).
--

SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TABLE public."Order Items" (
    id bigint NOT NULL,
    "Unit Price" numeric(10,2) NOT NULL,
    "user" text,
    quantity integer DEFAULT 1 NOT NULL
);

CREATE TABLE public.events (
    id bigint NOT NULL,
    happened_at timestamp with time zone DEFAULT now() NOT NULL,
    payload jsonb
);

CREATE VIEW public."Order Totals" AS
 SELECT "Order Items".id,
    ("Order Items"."Unit Price" * ("Order Items".quantity)::numeric) AS total,
    "Order Items"."user"
   FROM public."Order Items";

ALTER TABLE ONLY public."Order Items"
    ADD CONSTRAINT "Order Items_pkey" PRIMARY KEY (id);

CREATE INDEX "Order Items_Unit Price_idx" ON public."Order Items" USING btree ("Unit Price");

CREATE INDEX "Order Items_user_idx" ON public."Order Items" USING btree ("user");
