--
-- PostgreSQL database dump
--

\restrict xMAZljCyVBhFE5ThTynSeFfqh6WFJWzjBAVdghpmxDSmQW9utwI8o103c3Y00bk

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: alert; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert (
    fingerprint character varying NOT NULL,
    labels json NOT NULL,
    annotations json NOT NULL,
    state character varying NOT NULL,
    since timestamp with time zone NOT NULL,
    last_notified timestamp with time zone,
    resolved_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: baseline; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.baseline (
    id integer NOT NULL,
    monitor character varying NOT NULL,
    endpoint character varying NOT NULL,
    run_id integer NOT NULL,
    pinned_at timestamp with time zone NOT NULL
);


--
-- Name: baseline_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.baseline_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: baseline_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.baseline_id_seq OWNED BY public.baseline.id;


--
-- Name: benchmark_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.benchmark_version (
    id integer NOT NULL,
    name character varying NOT NULL,
    version character varying NOT NULL,
    item_count integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    frame character varying,
    template_digest character varying
);


--
-- Name: benchmark_version_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.benchmark_version_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: benchmark_version_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.benchmark_version_id_seq OWNED BY public.benchmark_version.id;


--
-- Name: drift_result; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.drift_result (
    id integer NOT NULL,
    run_id integer NOT NULL,
    scorer character varying NOT NULL,
    test character varying NOT NULL,
    baseline character varying NOT NULL,
    statistic double precision,
    p_value double precision,
    p_adjusted double precision,
    effect double precision,
    effect_ci_lower double precision,
    effect_ci_upper double precision,
    baseline_score double precision,
    detectable_effect double precision,
    decision character varying NOT NULL,
    pass_to_fail json NOT NULL,
    fail_to_pass json NOT NULL,
    detail text NOT NULL
);


--
-- Name: drift_result_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.drift_result_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: drift_result_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.drift_result_id_seq OWNED BY public.drift_result.id;


--
-- Name: endpoint; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.endpoint (
    id integer NOT NULL,
    name character varying NOT NULL,
    config_hash character varying NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: endpoint_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.endpoint_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: endpoint_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.endpoint_id_seq OWNED BY public.endpoint.id;


--
-- Name: item; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.item (
    id integer NOT NULL,
    benchmark_version_id integer NOT NULL,
    item_key character varying NOT NULL,
    fields json NOT NULL,
    reference json,
    split character varying,
    digest character varying
);


--
-- Name: item_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.item_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: item_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.item_id_seq OWNED BY public.item.id;


--
-- Name: item_result; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.item_result (
    id bigint NOT NULL,
    run_id integer NOT NULL,
    item_key character varying NOT NULL,
    output text,
    scores json NOT NULL,
    latency_s double precision,
    error_kind character varying,
    error_detail text,
    prompt_tokens integer,
    completion_tokens integer,
    cached_tokens integer,
    reasoning_tokens integer,
    attempts integer NOT NULL,
    judgments json,
    repeats json
);


--
-- Name: item_result_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.item_result_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: item_result_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.item_result_id_seq OWNED BY public.item_result.id;


--
-- Name: judge_check; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.judge_check (
    id integer NOT NULL,
    run_id integer NOT NULL,
    monitor character varying NOT NULL,
    endpoint character varying NOT NULL,
    scorer character varying NOT NULL,
    sentinel character varying NOT NULL,
    created_at timestamp with time zone NOT NULL,
    scores json NOT NULL,
    n integer NOT NULL,
    errors integer NOT NULL,
    accuracy double precision,
    kappa double precision,
    p_value double precision,
    moved boolean NOT NULL,
    direction character varying,
    agreement json NOT NULL,
    drift json NOT NULL
);


--
-- Name: judge_check_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.judge_check_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: judge_check_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.judge_check_id_seq OWNED BY public.judge_check.id;


--
-- Name: rescore; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.rescore (
    id integer NOT NULL,
    run_id integer NOT NULL,
    scorer character varying NOT NULL,
    scorer_id text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    value double precision,
    ci_lower double precision,
    ci_upper double precision,
    n integer NOT NULL,
    errors integer NOT NULL,
    skipped integer NOT NULL,
    scores json NOT NULL,
    judgments json NOT NULL
);


--
-- Name: rescore_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.rescore_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: rescore_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.rescore_id_seq OWNED BY public.rescore.id;


--
-- Name: run; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run (
    id integer NOT NULL,
    monitor character varying NOT NULL,
    benchmark character varying NOT NULL,
    benchmark_version character varying NOT NULL,
    endpoint character varying NOT NULL,
    trigger character varying NOT NULL,
    status character varying NOT NULL,
    status_reason character varying,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    n_items integer NOT NULL,
    n_errors integer NOT NULL,
    model_id character varying,
    judged character varying,
    fingerprint json,
    events json,
    token_answers integer,
    prompt_tokens bigint,
    completion_tokens bigint,
    cached_tokens bigint,
    reasoning_tokens bigint,
    cost_dollars double precision,
    cost_basis character varying,
    repeats integer
);


--
-- Name: run_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: run_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.run_id_seq OWNED BY public.run.id;


--
-- Name: run_score; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_score (
    run_id integer NOT NULL,
    scorer character varying NOT NULL,
    value double precision,
    ci_lower double precision,
    ci_upper double precision,
    n integer NOT NULL
);


--
-- Name: sequential_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sequential_state (
    monitor character varying NOT NULL,
    endpoint character varying NOT NULL,
    scorer character varying NOT NULL,
    benchmark_version character varying NOT NULL,
    value double precision,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: baseline id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.baseline ALTER COLUMN id SET DEFAULT nextval('public.baseline_id_seq'::regclass);


--
-- Name: benchmark_version id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.benchmark_version ALTER COLUMN id SET DEFAULT nextval('public.benchmark_version_id_seq'::regclass);


--
-- Name: drift_result id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.drift_result ALTER COLUMN id SET DEFAULT nextval('public.drift_result_id_seq'::regclass);


--
-- Name: endpoint id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.endpoint ALTER COLUMN id SET DEFAULT nextval('public.endpoint_id_seq'::regclass);


--
-- Name: item id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item ALTER COLUMN id SET DEFAULT nextval('public.item_id_seq'::regclass);


--
-- Name: item_result id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_result ALTER COLUMN id SET DEFAULT nextval('public.item_result_id_seq'::regclass);


--
-- Name: judge_check id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judge_check ALTER COLUMN id SET DEFAULT nextval('public.judge_check_id_seq'::regclass);


--
-- Name: rescore id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rescore ALTER COLUMN id SET DEFAULT nextval('public.rescore_id_seq'::regclass);


--
-- Name: run id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run ALTER COLUMN id SET DEFAULT nextval('public.run_id_seq'::regclass);


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alembic_version VALUES ('0008');


--
-- Data for Name: alert; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: baseline; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.baseline VALUES (1, 'm', 'chat', 1, '2026-11-01 12:00:00+00');


--
-- Data for Name: benchmark_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.benchmark_version VALUES (1, 'intents', 'v1', 5, '2026-11-01 12:00:00+00', NULL, NULL);


--
-- Data for Name: drift_result; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.drift_result VALUES (1, 1, 'exact_match', 'mcnemar_exact', 'rolling:1', NULL, 0.5, 1, 0, -0.2, 0.2, NULL, NULL, 'ok', '["q1"]', '[]', '');
INSERT INTO public.drift_result VALUES (2, 2, 'exact_match', 'mcnemar_exact', 'rolling:1', NULL, 0.5, 1, 0, -0.2, 0.2, NULL, NULL, 'ok', '["q1"]', '[]', '');
INSERT INTO public.drift_result VALUES (3, 3, 'exact_match', 'mcnemar_exact', 'rolling:1', NULL, 0.5, 1, 0, -0.2, 0.2, NULL, NULL, 'ok', '["q1"]', '[]', '');


--
-- Data for Name: endpoint; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.endpoint VALUES (1, 'chat', 'abc123', '2026-11-01 12:00:00+00');


--
-- Data for Name: item; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.item VALUES (1, 1, 'q0', '{"text":"request 0"}', '"refund"', NULL, NULL);
INSERT INTO public.item VALUES (2, 1, 'q1', '{"text":"request 1"}', '"refund"', NULL, NULL);
INSERT INTO public.item VALUES (3, 1, 'q2', '{"text":"request 2"}', '"refund"', NULL, NULL);
INSERT INTO public.item VALUES (4, 1, 'q3', '{"text":"request 3"}', '"refund"', NULL, NULL);
INSERT INTO public.item VALUES (5, 1, 'q4', '{"text":"request 4"}', '"refund"', NULL, NULL);


--
-- Data for Name: item_result; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.item_result VALUES (1, 1, 'q0', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (2, 1, 'q1', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (3, 1, 'q2', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (4, 1, 'q3', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (5, 1, 'q4', NULL, '{}', 0.2, 'timeout', '30s', NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (6, 2, 'q0', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (7, 2, 'q1', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (8, 2, 'q2', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (9, 2, 'q3', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (10, 2, 'q4', NULL, '{}', 0.2, 'timeout', '30s', NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (11, 3, 'q0', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (12, 3, 'q1', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (13, 3, 'q2', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (14, 3, 'q3', 'refund', '{"exact_match":1.0}', 0.1, NULL, NULL, NULL, NULL, NULL, NULL, 1, 'null', 'null');
INSERT INTO public.item_result VALUES (15, 3, 'q4', NULL, '{}', 0.2, 'timeout', '30s', NULL, NULL, NULL, NULL, 1, 'null', 'null');


--
-- Data for Name: judge_check; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: rescore; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: run; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.run VALUES (1, 'm', 'intents', 'v1', 'chat', 'schedule', 'succeeded', NULL, '2026-11-01 12:00:00+00', '2026-11-01 12:00:05+00', 5, 1, 'model-1', 'ok', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1);
INSERT INTO public.run VALUES (2, 'm', 'intents', 'v1', 'chat', 'schedule', 'succeeded', NULL, '2026-11-01 13:00:00+00', '2026-11-01 13:00:05+00', 5, 1, 'model-1', 'ok', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1);
INSERT INTO public.run VALUES (3, 'm', 'intents', 'v1', 'chat', 'schedule', 'succeeded', NULL, '2026-11-01 14:00:00+00', '2026-11-01 14:00:05+00', 5, 1, 'model-1', 'ok', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1);


--
-- Data for Name: run_score; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.run_score VALUES (1, 'exact_match', 1, 0.51, 1, 4);
INSERT INTO public.run_score VALUES (2, 'exact_match', 1, 0.51, 1, 4);
INSERT INTO public.run_score VALUES (3, 'exact_match', 1, 0.51, 1, 4);


--
-- Data for Name: sequential_state; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Name: baseline_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.baseline_id_seq', 1, true);


--
-- Name: benchmark_version_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.benchmark_version_id_seq', 1, true);


--
-- Name: drift_result_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.drift_result_id_seq', 3, true);


--
-- Name: endpoint_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.endpoint_id_seq', 1, true);


--
-- Name: item_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.item_id_seq', 5, true);


--
-- Name: item_result_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.item_result_id_seq', 15, true);


--
-- Name: judge_check_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.judge_check_id_seq', 1, false);


--
-- Name: rescore_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.rescore_id_seq', 1, false);


--
-- Name: run_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.run_id_seq', 3, true);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: alert pk_alert; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert
    ADD CONSTRAINT pk_alert PRIMARY KEY (fingerprint);


--
-- Name: baseline pk_baseline; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.baseline
    ADD CONSTRAINT pk_baseline PRIMARY KEY (id);


--
-- Name: benchmark_version pk_benchmark_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.benchmark_version
    ADD CONSTRAINT pk_benchmark_version PRIMARY KEY (id);


--
-- Name: drift_result pk_drift_result; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.drift_result
    ADD CONSTRAINT pk_drift_result PRIMARY KEY (id);


--
-- Name: endpoint pk_endpoint; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.endpoint
    ADD CONSTRAINT pk_endpoint PRIMARY KEY (id);


--
-- Name: item pk_item; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item
    ADD CONSTRAINT pk_item PRIMARY KEY (id);


--
-- Name: item_result pk_item_result; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_result
    ADD CONSTRAINT pk_item_result PRIMARY KEY (id);


--
-- Name: judge_check pk_judge_check; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judge_check
    ADD CONSTRAINT pk_judge_check PRIMARY KEY (id);


--
-- Name: rescore pk_rescore; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rescore
    ADD CONSTRAINT pk_rescore PRIMARY KEY (id);


--
-- Name: run pk_run; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run
    ADD CONSTRAINT pk_run PRIMARY KEY (id);


--
-- Name: run_score pk_run_score; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_score
    ADD CONSTRAINT pk_run_score PRIMARY KEY (run_id, scorer);


--
-- Name: sequential_state pk_sequential_state; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sequential_state
    ADD CONSTRAINT pk_sequential_state PRIMARY KEY (monitor, endpoint, scorer, benchmark_version);


--
-- Name: baseline uq_baseline_monitor_endpoint_run_id; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.baseline
    ADD CONSTRAINT uq_baseline_monitor_endpoint_run_id UNIQUE (monitor, endpoint, run_id);


--
-- Name: benchmark_version uq_benchmark_version_name_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.benchmark_version
    ADD CONSTRAINT uq_benchmark_version_name_version UNIQUE (name, version);


--
-- Name: endpoint uq_endpoint_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.endpoint
    ADD CONSTRAINT uq_endpoint_name UNIQUE (name);


--
-- Name: item uq_item_benchmark_version_id_item_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item
    ADD CONSTRAINT uq_item_benchmark_version_id_item_key UNIQUE (benchmark_version_id, item_key);


--
-- Name: item_result uq_item_result_run_id_item_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_result
    ADD CONSTRAINT uq_item_result_run_id_item_key UNIQUE (run_id, item_key);


--
-- Name: ix_benchmark_version_name_frame; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_benchmark_version_name_frame ON public.benchmark_version USING btree (name, frame);


--
-- Name: ix_drift_result_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_drift_result_run_id ON public.drift_result USING btree (run_id);


--
-- Name: ix_judge_check_monitor_endpoint_scorer_sentinel_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_judge_check_monitor_endpoint_scorer_sentinel_run_id ON public.judge_check USING btree (monitor, endpoint, scorer, sentinel, run_id);


--
-- Name: ix_judge_check_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_judge_check_run_id ON public.judge_check USING btree (run_id);


--
-- Name: ix_rescore_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_rescore_run_id ON public.rescore USING btree (run_id);


--
-- Name: ix_run_monitor_endpoint_started_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_monitor_endpoint_started_at ON public.run USING btree (monitor, endpoint, started_at);


--
-- Name: ix_run_started_at_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_started_at_id ON public.run USING btree (started_at, id);


--
-- Name: ix_run_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_status ON public.run USING btree (status);


--
-- Name: baseline fk_baseline_run_id_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.baseline
    ADD CONSTRAINT fk_baseline_run_id_run FOREIGN KEY (run_id) REFERENCES public.run(id) ON DELETE CASCADE;


--
-- Name: drift_result fk_drift_result_run_id_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.drift_result
    ADD CONSTRAINT fk_drift_result_run_id_run FOREIGN KEY (run_id) REFERENCES public.run(id) ON DELETE CASCADE;


--
-- Name: item fk_item_benchmark_version_id_benchmark_version; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item
    ADD CONSTRAINT fk_item_benchmark_version_id_benchmark_version FOREIGN KEY (benchmark_version_id) REFERENCES public.benchmark_version(id) ON DELETE CASCADE;


--
-- Name: item_result fk_item_result_run_id_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.item_result
    ADD CONSTRAINT fk_item_result_run_id_run FOREIGN KEY (run_id) REFERENCES public.run(id) ON DELETE CASCADE;


--
-- Name: judge_check fk_judge_check_run_id_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.judge_check
    ADD CONSTRAINT fk_judge_check_run_id_run FOREIGN KEY (run_id) REFERENCES public.run(id) ON DELETE CASCADE;


--
-- Name: rescore fk_rescore_run_id_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.rescore
    ADD CONSTRAINT fk_rescore_run_id_run FOREIGN KEY (run_id) REFERENCES public.run(id) ON DELETE CASCADE;


--
-- Name: run_score fk_run_score_run_id_run; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_score
    ADD CONSTRAINT fk_run_score_run_id_run FOREIGN KEY (run_id) REFERENCES public.run(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--

\unrestrict xMAZljCyVBhFE5ThTynSeFfqh6WFJWzjBAVdghpmxDSmQW9utwI8o103c3Y00bk

